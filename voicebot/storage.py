"""Files on disk: temp downloads, the private data directory, its lock and the heartbeat.

Example::

    temp = TempDir(Path("temp"))
    with temp.file(".ogg") as path:    # a fresh, server-chosen name
        download_into(path)
    # gone here, whatever happened inside
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from loguru import logger

from voicebot.errors import LockedError, StorageError

TEMP_PREFIX = "vb-"
HEARTBEAT_FILE = "heartbeat"
LOCK_FILE = "voicebot.lock"


class TempDir:
    """Where downloads live while a job runs. Names never come from a message."""

    def __init__(self, root: Path):
        self.root = root

    def prepare(self) -> int:
        """Create the directory and delete leftovers of a crashed run; return how many.

        Raises :class:`StorageError` when the directory cannot be created or written.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f"{TEMP_PREFIX}write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"TEMP_DIR {self.root} is not writable: {exc.strerror or exc}") from None
        removed = 0
        for stale in self.root.glob(TEMP_PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
        if removed:
            logger.info("removed {} leftover file(s) from {}", removed, self.root)
        return removed

    @contextlib.contextmanager
    def file(self, suffix: str = "") -> Iterator[Path]:
        """A unique path inside the temp dir, deleted on exit (success or failure).

        Only ``[.A-Za-z0-9]`` of ``suffix`` is kept, so nothing from a message can
        steer the path.
        """
        safe_suffix = "".join(c for c in suffix if c.isascii() and (c.isalnum() or c == "."))[:10]
        path = self.root / f"{TEMP_PREFIX}{uuid.uuid4().hex}{safe_suffix}"
        try:
            yield path
        finally:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # the disk itself is the problem: report the original error
                logger.warning("could not remove {}: {}", path, exc.strerror or exc)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory readable by its owner only, and tighten the session file.

    Raises :class:`StorageError` (one line) when it is not ours to use: a bind-mounted
    directory owned by another user is the usual case under Docker."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        for session in data_dir.glob("*.session"):
            os.chmod(session, 0o600)
    except PermissionError as exc:
        owner = data_dir.stat().st_uid if data_dir.exists() else None
        raise StorageError(
            f"DATA_DIR {data_dir} is not usable by uid {os.getuid()}"
            + (f" (it belongs to uid {owner})" if owner is not None else "")
            + f": {exc.strerror}; give it to this user (chown) or use the named volume"
        ) from None


@contextlib.contextmanager
def exclusive_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir``'s lock: one process at a time may use the Telegram session.

    Telethon's SQLite session breaks when two processes write it (``docker compose run
    login`` while the bot runs), so the second one stops with :class:`LockedError`.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(
                f"another voicebot process is using {data_dir} (stop the bot before logging in again)"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def write_heartbeat(data_dir: Path) -> None:
    """Record that the bot is alive and connected (read by ``voicebot health``)."""
    path = data_dir / HEARTBEAT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(time.time()))
    tmp.replace(path)


def heartbeat_age(data_dir: Path) -> float | None:
    """Seconds since the last heartbeat, or ``None`` if there has been none."""
    try:
        return max(0.0, time.time() - float((data_dir / HEARTBEAT_FILE).read_text()))
    except (FileNotFoundError, ValueError):
        return None
