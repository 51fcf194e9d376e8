"""The fake server outside a test's event loop: in its own thread, or as a command.

:class:`ServerThread` runs a :class:`~.server.FakeTelegramServer` on its own loop; the command
``python -m tests.fakegram.server --port 0 --user alice:Alice --user voicebot`` prints one JSON
line with the port and a session string per user, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from .server import FakeTelegramServer

T = TypeVar("T")


class ServerThread:
    """Runs a :class:`FakeTelegramServer` in its own thread and event loop.

    For tests whose own loop blocks (e.g. ``subprocess.run`` of the bot)::

        with ServerThread() as thread:
            bot = thread.call(thread.server.create_user, "Bot", username="voicebot")
            session = thread.call(thread.server.session_string_for, bot)
            subprocess.run([...], env={..., "SESSION": session})
    """

    def __init__(self, port: int = 0) -> None:
        self.server = FakeTelegramServer(port=port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakegram", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result()
        return self

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` (sync or async) on the server's loop and return its result."""

        async def run() -> T:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _serve_forever(port: int, user_specs: list[str]) -> None:
    server = await FakeTelegramServer(port=port).start()
    users = {}
    for spec in user_specs:
        username, _, first_name = spec.partition(":")
        user = server.create_user(first_name or username, username)
        users[username] = {"id": user.id, "session": server.session_string_for(user)}
    print(json.dumps({"port": server.port, "users": users}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fakegram MTProto server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="USERNAME[:FIRST_NAME]",
        help="create a user and print its session string (repeatable)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level)
    asyncio.run(_serve_forever(args.port, args.user))
