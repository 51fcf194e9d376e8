"""A command on a pseudo-terminal, read and typed into as a person would, and what it drew.

Example::

    with Terminal([sys.executable, "-m", "voicebot", "login"], env=env) as term:
        term.expect("Phone number")
        term.type("+44 7700 900123")
        assert term.wait() == 0
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMEOUT = 60  # generous: a busy 2-core machine; nothing is measured with it


class Terminal:
    """``argv`` with its stdin, stdout and stderr on one pty (no controlling terminal, so
    getpass reads the pty like input does)."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path = ROOT):
        self._master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self._raw = b""
        self._mark = 0  # expect() looks for text after this point of the output

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def screen(self) -> str:
        """Everything printed so far, without colour codes."""
        return ANSI.sub("", self._raw.decode(errors="replace")).replace("\r\n", "\n")

    def _read(self, deadline: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: the child closed the pty
            return False
        self._raw += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = TIMEOUT) -> str:
        """Wait until ``text`` appears after what earlier calls matched; returns the new output."""
        deadline = time.monotonic() + timeout
        while text not in self.screen[self._mark :]:
            if not self._read(deadline) and (time.monotonic() >= deadline or self.process.poll() is not None):
                raise AssertionError(f"never saw {text!r}; the terminal shows:\n{self.screen}")
        start = self._mark
        self._mark = self.screen.index(text, self._mark) + len(text)
        return self.screen[start : self._mark]

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit code, reading the rest of the output meanwhile."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(min(deadline, time.monotonic() + 0.2))
        while self._read(time.monotonic() + 0.2):
            pass
        return self.process.wait(timeout=1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self._master)


def qr_codes(screen: str) -> list[str]:
    """Decode every QR code drawn on ``screen`` with half blocks, as a phone's camera would.

    Each character is two pixels, top and bottom: █ both light, ▀ top light, ▄ bottom light,
    space both dark. The picture is scaled up and decoded by ZXing (zxing-cpp).
    """
    import zxingcpp

    blocks = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}
    found, rows = [], []
    for line in screen.split("\n") + [""]:
        if line and set(line) <= set(blocks) and any(c != " " for c in line):
            rows.append(line)
            continue
        if len(rows) >= 10:
            width = max(len(r) for r in rows)
            pixels = np.zeros((len(rows) * 2, width), dtype=np.uint8)
            for y, row in enumerate(rows):
                for x, char in enumerate(row.ljust(width)):
                    top, bottom = blocks[char]
                    pixels[2 * y, x], pixels[2 * y + 1, x] = top * 255, bottom * 255
            image = np.kron(pixels, np.ones((8, 8), dtype=np.uint8))  # 8 px per module
            found += [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
        rows = []
    return found
