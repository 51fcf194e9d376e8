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

A client either owns a pre-shared, logged-in auth key (the session string), or creates one
with the MTProto DH handshake (:mod:`.handshake`) and then logs in (:mod:`.logins`): a
"fresh install" needs only a session that names this server (:meth:`FakeTelegramServer.
fresh_session`) and a process that trusts the fake's RSA key. An unknown key gets the
transport error -404 like Telegram.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import struct
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any, Self

from telethon.crypto import AuthKey
from telethon.extensions import BinaryReader
from telethon.sessions import StringSession
from telethon.tl import TLObject, functions, types
from telethon.tl.alltlobjects import LAYER
from telethon.tl.core import GzipPacked

from .connection import Authorization, Connection
from .faults import FaultInjection, _Fault
from .logins import OLD_DEVICE_AGE, Logins
from .records import DC_ID, DC_IDS, RpcFail, UserRecord, now
from .rpc import HANDLERS, RpcContext
from .rpc_auth import UNAUTHORIZED
from .scenario import Scenario
from .world import World

log = logging.getLogger("fakegram")

HOST = "127.0.0.1"
BOOL_TRUE, BOOL_FALSE, VECTOR = 0x997275B5, 0xBC799737, 0x1CB5C415
WRAPPERS = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
)


def serialize_result(result: Any) -> bytes:
    """Serialize a handler result: TL object, ``bool`` or ``list`` (TL ``Vector``)."""
    if isinstance(result, bool):
        return struct.pack("<I", BOOL_TRUE if result else BOOL_FALSE)
    if isinstance(result, list):
        return struct.pack("<Ii", VECTOR, len(result)) + b"".join(serialize_result(r) for r in result)
    if isinstance(result, TLObject):
        return bytes(result)
    raise TypeError(f"cannot serialize RPC result {result!r}")


class FakeTelegramServer(Scenario, FaultInjection):
    """A fake Telegram on 127.0.0.1 with two data centres: DC 2 on :attr:`port` (where
    every fresh Telethon session starts) and DC 1 on ``port_of(1)``, both listed in
    help.getConfig. One world serves both; what differs is what Telegram documents: auth keys
    are per DC, an account lives on one (``home_dc``: PHONE_MIGRATE_X, auth.loginTokenMigrateTo),
    a file on one (FILE_MIGRATE_X; auth.exportAuthorization/importAuthorization to fetch it).

    Example::

        server = await FakeTelegramServer().start()
        bob = server.create_user("Bob", username="bob")
        session = server.session_string_for(bob)      # hand to TelegramClient or a subprocess
        server.inject_flood_wait("SendMessageRequest", 3)
        await server.stop()
    """

    def __init__(self, port: int = 0, *, short_updates: bool = True) -> None:
        self.world = World(self._deliver)
        # Text messages in private chats and basic groups reach their recipients as
        # updateShortMessage/updateShortChatMessage, without the sender's User (as on Telegram).
        self.world.short_updates = short_updates
        self._port = port  # always on 127.0.0.1: nothing here may touch a real network
        self._server: asyncio.Server | None = None
        self._ports: dict[int, int] = {DC_ID: port, **{dc: 0 for dc in DC_IDS if dc != DC_ID}}
        self._others: dict[int, asyncio.Server] = {}  # the listeners of the DCs other than DC 2
        self._auths: dict[int, Authorization] = {}
        self.logins = Logins(self.world, self._auths, self._push_to_auth)
        self._connections: set[Connection] = set()
        self._faults: list[_Fault] = []
        self._get_file_delay = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        # How often each method (innermost request class name) was called: calls["GetFileRequest"].
        self.calls: Counter[str] = Counter()
        # Every upload.getFile answered: (file id, offset, bytes sent), to see where a download resumed.
        self.file_reads: list[tuple[int, int, int]] = []

    # region lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._port

    def port_of(self, dc_id: int) -> int:
        """The port of data centre ``dc_id`` (``port`` is DC 2's)."""
        return self.port if dc_id == DC_ID else self._ports[dc_id]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accepter(DC_ID), HOST, self._port)
        self._port = self._ports[DC_ID] = self._server.sockets[0].getsockname()[1]
        for dc in self._ports.keys() - {DC_ID}:
            self._others[dc] = await asyncio.start_server(self._accepter(dc), HOST, self._ports[dc])
            self._ports[dc] = self._others[dc].sockets[0].getsockname()[1]

    async def start(self) -> Self:
        await self._listen()
        log.info("fakegram listening on %s: %s", HOST, self._ports)
        return self

    async def _close_others(self) -> None:
        for other in self._others.values():
            other.close()
            await other.wait_closed()
        self._others.clear()

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
        await self._close_others()
        self._server = None

    async def go_offline(self) -> None:
        """Become unreachable, as Telegram behind a dead link: stop listening (a new connection
        is refused) and abort the live connections, until :meth:`come_back`. What happens
        meanwhile (:meth:`send_message` works) waits for the clients' catch-up. Example::

            await fakegram.go_offline()
            fakegram.send_message(alice, bot_user, voice=ogg)   # while the bot cannot see it
            await fakegram.come_back()
        """
        assert self._server is not None, "server not started"
        self._server.close()
        for other in self._others.values():
            other.close()
        self.drop_connections()
        await self._server.wait_closed()
        await self._close_others()
        log.info("fakegram offline (port %d refuses connections)", self._port)

    async def come_back(self) -> None:
        """Listen again on the same port after :meth:`go_offline`."""
        await self._listen()
        log.info("fakegram back on %s: %s", HOST, self._ports)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _accepter(self, dc_id: int):
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connection = Connection(self, reader, writer, dc_id)
            self._connections.add(connection)
            await connection.serve()

        return accept

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # Requests run as tasks so a slow one (getFile) doesn't block the connection;
        # tasks start in FIFO order, so handlers without awaits keep the request order.
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # endregion

    # region users, sessions and inspection

    def authorize(self, user: UserRecord) -> AuthKey:
        """Register a fresh auth key (a new "device") for ``user``: a device that logged in
        long ago (it may terminate other sessions: FRESH_RESET_AUTHORISATION_FORBIDDEN)."""
        key = AuthKey(os.urandom(256))
        self._auths[key.key_id] = Authorization(
            key=key, user_id=user.id, created=now() - OLD_DEVICE_AGE, dc_id=user.home_dc
        )
        return key

    def fresh_session(self, dc_id: int = DC_ID) -> StringSession:
        """A session that knows this server's address (DC 2's, as Telethon's default, or
        ``dc_id``'s) and nothing else: a fresh install.

        Its client creates an auth key by the DH handshake (trust the fake's RSA key first:
        :func:`~.handshake.trust_server_key`) and must then log in.
        """
        session = StringSession()
        session.set_dc(dc_id, HOST, self.port_of(dc_id))
        return session

    def session_string_for(self, user: UserRecord) -> str:
        """A Telethon ``StringSession`` string (the user's home DC, 127.0.0.1, its port, a new auth key).

        Usable from another process, and reusable across restarts of that process::

            TelegramClient(StringSession(server.session_string_for(bot)), 1, "x")
        """
        session = StringSession()
        session.set_dc(user.home_dc, HOST, self.port_of(user.home_dc))
        session.auth_key = self.authorize(user)
        return session.save()

    def is_online(self, user: UserRecord) -> bool:
        """Whether a session of ``user`` is connected and would handle a pushed update.

        A freshly started client counts once it fetched its update state (``updates.getState`` or
        ``getDifference``; Telethon does so at login and in ``run_until_disconnected``), a
        reconnecting one as soon as it made a request.
        """
        return any(
            c.auth and c.auth.user_id == user.id and c.receives_updates and not c.syncing for c in self._connections
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
        dropped = [c for c in list(self._connections) if user is None or (c.auth and c.auth.user_id == user.id)]
        for connection in dropped:
            connection.close(abort=True)
        return len(dropped)

    # endregion

    # region RPC and updates

    def _unwrap(self, connection: Connection, request: TLObject) -> tuple[TLObject, bool]:
        """Strip invokeWithLayer/initConnection/... and report whether it subscribes to updates."""
        subscribes = True
        while True:
            if isinstance(request, GzipPacked):
                request = BinaryReader(request.data).tgread_object()
            elif isinstance(request, WRAPPERS):
                if isinstance(request, functions.InitConnectionRequest):
                    # What account.getAuthorizations shows of this session.
                    auth = connection.authorization
                    auth.device_model, auth.app_version = request.device_model, request.app_version
                    auth.system_version, auth.api_id = request.system_version, request.api_id
                if isinstance(request, functions.InvokeWithLayerRequest):
                    connection.syncing = True  # Telethon sends the layer only from connect()
                    if request.layer != LAYER:
                        log.warning("%r uses layer %d, fakegram speaks %d", connection, request.layer, LAYER)
                if isinstance(request, functions.InvokeWithoutUpdatesRequest):
                    subscribes = False
                request = request.query
            else:
                return request, subscribes

    async def _invoke(self, connection: Connection, msg_id: int, request: TLObject) -> None:
        query, subscribes = self._unwrap(connection, request)
        name = type(query).__name__
        auth = connection.authorization
        user = self.world.users[auth.user_id] if auth.user_id is not None else None
        connection.receives_updates |= subscribes
        self.calls[name] += 1
        if isinstance(query, (functions.updates.GetStateRequest, functions.updates.GetDifferenceRequest)):
            connection.syncing = False
        try:
            if user is None and type(query) not in UNAUTHORIZED:
                # Not logged in (yet, or any more): "The key is not registered in the system"
                # (core.telegram.org/api/errors#401-unauthorized).
                raise RpcFail(401, "AUTH_KEY_UNREGISTERED")
            if user is not None and user.deleted:
                # A deleted account's sessions are dead (core.telegram.org/api/errors#401-unauthorized).
                raise RpcFail(401, "USER_DEACTIVATED")
            fault = self._take_fault(name, user, query)
            if fault is not None and fault.drop:
                log.info("%r: dropping connection on %s (injected)", connection, name)
                connection.close(abort=True)
                return
            if fault is not None and not fault.drop_after:
                raise RpcFail(fault.code, fault.message)
            handler = HANDLERS.get(type(query))
            if handler is None:
                log.warning("method %s is not implemented by fakegram: %.300s", name, query)
                raise RpcFail(400, f"METHOD_NOT_IMPLEMENTED_{name}")
            context = RpcContext(
                self.world, user, connection, self.port, self._get_file_delay, auth.channel_marks, auth, self.logins,
                connection.dc_id, dict(self._ports),
            )  # fmt: skip
            result = handler(context, query)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(query, functions.upload.GetFileRequest):
                self.file_reads.append((query.location.id, query.offset, len(result.bytes)))
            if fault is not None and fault.drop_after:
                log.info("%r: %s done, dropping the connection before answering (injected)", connection, name)
                connection.close(abort=True)
                return
            payload = serialize_result(result)
            if not isinstance(query, functions.upload.GetFileRequest):  # file bytes don't compress
                payload = GzipPacked.gzip_if_smaller(True, payload)
        except RpcFail as exc:
            log.info("%s by user %s -> %d %s", name, user.id if user else None, exc.code, exc.message)
            payload = bytes(types.RpcError(exc.code, exc.message))
        except Exception:
            log.exception("fakegram crashed handling %s", name)
            # 400, not 500: Telethon would silently retry a 500 several times.
            payload = bytes(types.RpcError(400, f"FAKEGRAM_CRASHED_{name}"))
        connection.send_rpc_result(msg_id, payload)
        if auth.missed_updates and connection.receives_updates:
            auth.missed_updates = False
            connection.push(types.UpdatesTooLong())

    def _push_to_auth(self, auth: Authorization, updates: TLObject) -> None:
        """Push ``updates`` to the live connections of one session (e.g. updateLoginToken to the
        session that exported the login token, logged in or not)."""
        for connection in self._connections:
            if connection.auth is auth and connection.receives_updates:
                connection.push(updates)

    def _deliver(self, user_id: int, updates: TLObject, exclude: object | None) -> bool:
        """Push ``updates`` to every live, subscribed session of the user except ``exclude``.

        Returns whether some session of the user was live (the excluded one gets the RPC result).
        """
        delivered = False
        for auth in self._auths.values():
            if auth.user_id != user_id or auth.exported:
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


if __name__ == "__main__":  # python -m tests.fakegram.server
    from .standalone import main

    main()
