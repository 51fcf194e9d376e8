"""Loopback MTProto server that real, unmodified Telethon clients talk to.

In-loop use (what the ``fakegram`` pytest fixture does)::

    server = await FakeTelegramServer().start()          # 127.0.0.1, free port
    alice = server.create_user("Alice", username="alice")
    client = TelegramClient(StringSession(server.session_string_for(alice)), 1, "x")
    await client.connect()                                # authorised, no login needed
    ...
    await server.stop()

For a bot running in another process, run the server in a thread (:class:`ServerThread`)
or standalone: ``python -m tests.fakegram.server --port 0 --user alice:Alice --user voicebot``
prints one JSON line with the port and a session string per user, then serves until killed.

Clients must already own an auth key (pre-shared via the session string): the DH key
exchange is not implemented, an unknown key gets the transport error -404 like Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import random
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from telethon.crypto import AuthKey
from telethon.extensions import BinaryReader
from telethon.sessions import StringSession
from telethon.tl import TLObject, functions, types
from telethon.tl.alltlobjects import LAYER
from telethon.tl.core import GzipPacked, MessageContainer, RpcResult
from telethon.tl.tlobject import TLRequest

from .mtproto import (
    ProtocolError,
    ServerMessageIds,
    TcpFullCodec,
    decrypt_client_message,
    encrypt_server_message,
    read_key_id,
)
from .faults import FaultInjection, _Fault
from .records import DC_ID, RpcFail, UserRecord
from .rpc import HANDLERS, RpcContext
from .scenario import Scenario
from .world import World

log = logging.getLogger("fakegram")

HOST = "127.0.0.1"
BOOL_TRUE, BOOL_FALSE, VECTOR = 0x997275B5, 0xBC799737, 0x1CB5C415
# Transport-level "auth key not found", what Telegram answers for an unknown key.
TRANSPORT_AUTH_KEY_NOT_FOUND = -404
WRAPPERS = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
)

T = TypeVar("T")


def serialize_result(result: Any) -> bytes:
    """Serialize a handler result: TL object, ``bool`` or ``list`` (TL ``Vector``)."""
    if isinstance(result, bool):
        return struct.pack("<I", BOOL_TRUE if result else BOOL_FALSE)
    if isinstance(result, list):
        return struct.pack("<Ii", VECTOR, len(result)) + b"".join(serialize_result(r) for r in result)
    if isinstance(result, TLObject):
        return bytes(result)
    raise TypeError(f"cannot serialize RPC result {result!r}")


@dataclass(eq=False)
class Authorization:
    """One pre-shared auth key (one "device") of a user."""

    key: AuthKey
    user_id: int
    salt: int = field(default_factory=lambda: random.getrandbits(63))
    sessions: set[int] = field(default_factory=set)
    # Set when an update could not be pushed because no session of this key was online;
    # the next request then gets ``updatesTooLong`` so Telethon fetches the difference.
    missed_updates: bool = False
    # Channel pts this key's sessions were told about (live or by difference): World.difference
    # turns a channel past its mark into updateChannelTooLong.
    channel_marks: dict[int, int] = field(default_factory=dict)


class _Connection:
    """One TCP connection: TcpFull framing, MTProto session state, service messages."""

    def __init__(
        self, server: FakeTelegramServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self._writer = writer
        self._codec = TcpFullCodec(reader, writer)
        self._ids = ServerMessageIds()
        self.auth: Authorization | None = None
        self.session_id = 0
        self.receives_updates = False  # Telegram only pushes after a request without invokeWithoutUpdates
        # A client start (initConnection) is "syncing" until it fetched its update state; an update
        # pushed before its updates.getState would be skipped by Telethon as already known.
        self.syncing = False
        self.closed = False

    @property
    def authorization(self) -> Authorization:
        # Only requests decrypted with a known key get past _on_packet, so this is always set there.
        assert self.auth is not None
        return self.auth

    def __repr__(self) -> str:
        user = self.auth.user_id if self.auth else None
        return f"<fakegram connection user={user} {self._writer.get_extra_info('peername')}>"

    async def serve(self) -> None:
        try:
            while not self.closed:
                self._on_packet(await self._codec.read_packet())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # client went away (or we dropped it)
        except ProtocolError as exc:
            log.warning("%r: protocol error: %s", self, exc)
        except Exception:
            log.exception("%r: cannot handle packet", self)
        finally:
            self.close()

    def close(self, *, abort: bool = False) -> None:
        if not self.closed:
            self.closed = True
            if abort:
                self._writer.transport.abort()  # like a network failure: nothing more is flushed
            else:
                self._writer.close()
            self._server._connections.discard(self)

    def _on_packet(self, packet: bytes) -> None:
        key_id = read_key_id(packet)
        auth = self._server._auths.get(key_id)
        if auth is None or (self.auth is not None and auth is not self.auth):
            if key_id == 0:
                log.error(
                    "%r: client tried to create an auth key; fakegram only supports "
                    "pre-shared keys (use session_string_for)",
                    self,
                )
            else:
                log.warning("%r: unknown auth key %016x", self, key_id)
            self._codec.write_packet(struct.pack("<i", TRANSPORT_AUTH_KEY_NOT_FOUND))
            self.close()
            return
        self.auth = auth
        message = decrypt_client_message(auth.key, packet)
        if message.session_id != self.session_id:
            self.session_id = message.session_id
            if message.session_id not in auth.sessions:
                auth.sessions.add(message.session_id)
                self.send(
                    bytes(
                        types.NewSessionCreated(
                            first_msg_id=message.msg_id,
                            unique_id=random.getrandbits(63),
                            server_salt=auth.salt,
                        )
                    ),
                    response=False,
                )
        self._dispatch(message.msg_id, BinaryReader(message.body).tgread_object())

    def _dispatch(self, msg_id: int, obj: TLObject) -> None:
        if isinstance(obj, MessageContainer):
            for inner in obj.messages:
                self._dispatch(inner.msg_id, inner.obj)
        elif isinstance(obj, GzipPacked):
            self._dispatch(msg_id, BinaryReader(obj.data).tgread_object())
        elif isinstance(obj, (functions.PingRequest, functions.PingDelayDisconnectRequest)):
            self.send(bytes(types.Pong(msg_id=msg_id, ping_id=obj.ping_id)), response=True)
        elif isinstance(obj, functions.DestroySessionRequest):
            known = obj.session_id in self.authorization.sessions
            self.authorization.sessions.discard(obj.session_id)
            reply = types.DestroySessionOk if known else types.DestroySessionNone
            self.send(bytes(reply(obj.session_id)), response=True)
        elif isinstance(obj, functions.GetFutureSaltsRequest):
            salt = types.FutureSalt(
                valid_since=int(time.time()),
                valid_until=int(time.time()) + 3600,
                salt=self.authorization.salt,
            )
            self.send(
                bytes(types.FutureSalts(req_msg_id=msg_id, now=int(time.time()), salts=[salt])), response=True
            )
        elif isinstance(obj, TLRequest):
            self._server._spawn(self._server._invoke(self, msg_id, obj))
        else:
            log.debug("%r: ignoring %s", self, type(obj).__name__)  # msgs_ack, msgs_state_req...

    def send(self, body: bytes, *, response: bool, content_related: bool = True) -> None:
        if self.closed or self.auth is None:
            return
        msg_id = self._ids.next_msg_id(response=response)
        seq_no = self._ids.next_seq_no(content_related=content_related)
        self._codec.write_packet(
            encrypt_server_message(self.auth.key, self.auth.salt, self.session_id, msg_id, seq_no, body)
        )

    def send_rpc_result(self, req_msg_id: int, payload: bytes) -> None:
        self.send(struct.pack("<Iq", RpcResult.CONSTRUCTOR_ID, req_msg_id) + payload, response=True)

    def push(self, updates: TLObject) -> None:
        self.send(GzipPacked.gzip_if_smaller(True, bytes(updates)), response=False)


class FakeTelegramServer(Scenario, FaultInjection):
    """A single-DC (DC 2) fake Telegram on 127.0.0.1.

    Example::

        server = await FakeTelegramServer().start()
        bob = server.create_user("Bob", username="bob")
        session = server.session_string_for(bob)      # hand to TelegramClient or a subprocess
        server.inject_flood_wait("SendMessageRequest", 3)
        await server.stop()
    """

    def __init__(self, port: int = 0) -> None:
        self.world = World(self._deliver)
        self._port = port  # always on 127.0.0.1: nothing here may touch a real network
        self._server: asyncio.Server | None = None
        self._auths: dict[int, Authorization] = {}
        self._connections: set[_Connection] = set()
        self._faults: list[_Fault] = []
        self._get_file_delay = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        # How often each method (innermost request class name) was called: calls["GetFileRequest"].
        self.calls: Counter[str] = Counter()

    # region lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._port

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, HOST, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("fakegram listening on %s:%d", HOST, self._port)
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            connection.close(abort=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        await connection.serve()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # Requests run as tasks so a slow one (getFile) doesn't block the connection;
        # tasks start in FIFO order, so handlers without awaits keep the request order.
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # endregion

    # region users, sessions and inspection

    def authorize(self, user: UserRecord) -> AuthKey:
        """Register a fresh auth key (a new "device") for ``user``."""
        key = AuthKey(os.urandom(256))
        self._auths[key.key_id] = Authorization(key=key, user_id=user.id)
        return key

    def session_string_for(self, user: UserRecord) -> str:
        """A Telethon ``StringSession`` string (DC 2, 127.0.0.1, this port, a new auth key).

        Usable from another process, and reusable across restarts of that process::

            TelegramClient(StringSession(server.session_string_for(bot)), 1, "x")
        """
        session = StringSession()
        session.set_dc(DC_ID, HOST, self.port)
        session.auth_key = self.authorize(user)
        return session.save()

    def is_online(self, user: UserRecord) -> bool:
        """Whether a session of ``user`` is connected and would handle a pushed update.

        A freshly started client counts once it fetched its update state (``updates.getState`` or
        ``getDifference``; Telethon does so at login and in ``run_until_disconnected``), a
        reconnecting one as soon as it made a request.
        """
        return any(
            c.auth and c.auth.user_id == user.id and c.receives_updates and not c.syncing
            for c in self._connections
        )

    async def wait_online(self, user: UserRecord, timeout: float = 10.0) -> None:
        """Wait until :meth:`is_online` (e.g. a bot subprocess finished starting up)."""
        deadline = time.monotonic() + timeout
        while not self.is_online(user):
            if time.monotonic() > deadline:
                raise TimeoutError(f"user {user.username or user.id} did not come online in {timeout}s")
            await asyncio.sleep(0.02)

    def drop_connections(self, user: UserRecord | None = None) -> int:
        """Abort the live TCP connections (of ``user``, or all); Telethon reconnects by itself."""
        dropped = [
            c for c in list(self._connections) if user is None or (c.auth and c.auth.user_id == user.id)
        ]
        for connection in dropped:
            connection.close(abort=True)
        return len(dropped)

    # endregion

    # region RPC and updates

    def _unwrap(self, connection: _Connection, request: TLObject) -> tuple[TLObject, bool]:
        """Strip invokeWithLayer/initConnection/... and report whether it subscribes to updates."""
        subscribes = True
        while True:
            if isinstance(request, GzipPacked):
                request = BinaryReader(request.data).tgread_object()
            elif isinstance(request, WRAPPERS):
                if isinstance(request, functions.InvokeWithLayerRequest):
                    connection.syncing = True  # Telethon sends the layer only from connect()
                    if request.layer != LAYER:
                        log.warning("%r uses layer %d, fakegram speaks %d", connection, request.layer, LAYER)
                if isinstance(request, functions.InvokeWithoutUpdatesRequest):
                    subscribes = False
                request = request.query
            else:
                return request, subscribes

    async def _invoke(self, connection: _Connection, msg_id: int, request: TLObject) -> None:
        query, subscribes = self._unwrap(connection, request)
        name = type(query).__name__
        auth = connection.authorization
        user = self.world.users[auth.user_id]
        connection.receives_updates |= subscribes
        self.calls[name] += 1
        if isinstance(query, (functions.updates.GetStateRequest, functions.updates.GetDifferenceRequest)):
            connection.syncing = False
        try:
            if user.deleted:
                # A deleted account's sessions are dead (core.telegram.org/api/errors#401-unauthorized).
                raise RpcFail(401, "USER_DEACTIVATED")
            fault = self._take_fault(name, user, query)
            if fault is not None and fault.drop:
                log.info("%r: dropping connection on %s (injected)", connection, name)
                connection.close(abort=True)
                return
            if fault is not None:
                raise RpcFail(fault.code, fault.message)
            handler = HANDLERS.get(type(query))
            if handler is None:
                log.warning("method %s is not implemented by fakegram: %.300s", name, query)
                raise RpcFail(400, f"METHOD_NOT_IMPLEMENTED_{name}")
            context = RpcContext(self.world, user, connection, self.port, self._get_file_delay, auth.channel_marks)
            result = handler(context, query)
            if inspect.isawaitable(result):
                result = await result
            payload = serialize_result(result)
            if not isinstance(query, functions.upload.GetFileRequest):  # file bytes don't compress
                payload = GzipPacked.gzip_if_smaller(True, payload)
        except RpcFail as exc:
            log.info("%s by user %d -> %d %s", name, user.id, exc.code, exc.message)
            payload = bytes(types.RpcError(exc.code, exc.message))
        except Exception:
            log.exception("fakegram crashed handling %s", name)
            # 400, not 500: Telethon would silently retry a 500 several times.
            payload = bytes(types.RpcError(400, f"FAKEGRAM_CRASHED_{name}"))
        connection.send_rpc_result(msg_id, payload)
        if auth.missed_updates and connection.receives_updates:
            auth.missed_updates = False
            connection.push(types.UpdatesTooLong())

    def _deliver(self, user_id: int, updates: TLObject, exclude: object | None) -> bool:
        """Push ``updates`` to every live, subscribed session of the user except ``exclude``.

        Returns whether some session of the user was live (the excluded one gets the RPC result).
        """
        delivered = False
        for auth in self._auths.values():
            if auth.user_id != user_id:
                continue
            live = [c for c in self._connections if c.auth is auth and c.receives_updates]
            if not live:
                auth.missed_updates = True
                continue
            delivered = True
            _note_channel_pts(auth.channel_marks, updates)
            for connection in live:
                if connection is not exclude:
                    connection.push(updates)
        return delivered

    # endregion


def _note_channel_pts(marks: dict[int, int], updates: TLObject) -> None:
    for update in getattr(updates, "updates", None) or []:
        channel_id = getattr(update, "channel_id", None) or getattr(
            getattr(getattr(update, "message", None), "peer_id", None), "channel_id", None
        )
        pts = getattr(update, "pts", None)
        if channel_id and pts:
            marks[channel_id] = max(marks.get(channel_id, 0), pts)


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


if __name__ == "__main__":
    main()
