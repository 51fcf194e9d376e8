"""One client connection: TcpFull framing, MTProto session state and service messages.

RPC requests are handed to the owning :class:`~.server.FakeTelegramServer`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telethon.crypto import AuthKey
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, functions, types
from telethon.tl.core import GzipPacked, MessageContainer, RpcResult
from telethon.tl.tlobject import TLRequest

from .handshake import Handshake, HandshakeError
from .mtproto import (
    ProtocolError,
    ServerMessageIds,
    TcpFullCodec,
    decrypt_client_message,
    encrypt_server_message,
    read_key_id,
)
from .records import DC_ID

if TYPE_CHECKING:
    from .server import FakeTelegramServer

log = logging.getLogger("fakegram")

# Transport-level "auth key not found", what Telegram answers for an unknown key.
TRANSPORT_AUTH_KEY_NOT_FOUND = -404


@dataclass(eq=False)
class Authorization:
    """One auth key (one "device"): pre-shared, or made by a client's DH handshake.

    ``user_id`` is None until the key logs in (``auth.signIn``, ``auth.checkPassword``, an
    accepted QR token), and again after the session is terminated: its requests then get
    401 AUTH_KEY_UNREGISTERED (core.telegram.org/api/errors#401-unauthorized).
    """

    key: AuthKey
    user_id: int | None
    salt: int = field(default_factory=lambda: random.getrandbits(63))
    # account.getAuthorizations: a random hash per session and what initConnection said.
    hash: int = field(default_factory=lambda: random.getrandbits(63))
    created: int = field(default_factory=lambda: int(time.time()))
    device_model: str = ""
    app_version: str = ""
    system_version: str = ""
    api_id: int = 0
    # A code or QR login of an account with two-step verification: the user id whose
    # password auth.checkPassword must prove before the key is bound (SESSION_PASSWORD_NEEDED).
    password_pending: int | None = None
    sessions: set[int] = field(default_factory=set)
    # Set when an update could not be pushed because no session of this key was online;
    # the next request then gets ``updatesTooLong`` so Telethon fetches the difference.
    missed_updates: bool = False
    # Channel pts this key's sessions were told about (live or by difference): World.difference
    # turns a channel past its mark into updateChannelTooLong.
    channel_marks: dict[int, int] = field(default_factory=dict)
    # The DC the key was made on: "auth_key's are associated with a server" (Telethon
    # telegrambaseclient.py, _switch_dc), so a client moving DC makes a new one there.
    dc_id: int = DC_ID
    # Logged in by auth.importAuthorization: a copy of a session on another DC (downloads),
    # not a device of its own (no updates, not in account.getAuthorizations).
    exported: bool = False


class Connection:
    """One TCP connection: TcpFull framing, MTProto session state, service messages."""

    def __init__(
        self,
        server: FakeTelegramServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dc_id: int = DC_ID,
    ) -> None:
        self._server = server
        self.dc_id = dc_id
        self._writer = writer
        self._codec = TcpFullCodec(reader, writer)
        self._ids = ServerMessageIds()
        self.auth: Authorization | None = None
        self._handshake: Handshake | None = None  # a client creating its auth key
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
        if key_id == 0 and self.auth is None:
            self._on_plain(packet)
            return
        auth = self._server._auths.get(key_id)
        if auth is not None and auth.dc_id != self.dc_id:
            auth = None  # a key of another DC is unknown here
        if auth is None or (self.auth is not None and auth is not self.auth):
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

    def _on_plain(self, packet: bytes) -> None:
        """An unencrypted message: only the auth key creation uses them
        (core.telegram.org/mtproto/description#unencrypted-message)."""
        if len(packet) < 20:
            raise ProtocolError("unencrypted message too short")
        _, length = struct.unpack("<qi", packet[8:20])
        if not 0 < length <= len(packet) - 20:
            raise ProtocolError("unencrypted message length exceeds the packet")
        request = BinaryReader(packet[20 : 20 + length]).tgread_object()
        self._handshake = self._handshake or Handshake()
        try:
            answer = self._handshake.answer(request)
        except HandshakeError as exc:
            log.warning("%r: auth key creation failed: %s", self, exc)
            self.close()
            return
        body = bytes(answer)
        msg_id = self._ids.next_msg_id(response=True)
        self._codec.write_packet(struct.pack("<qqi", 0, msg_id, len(body)) + body)
        if self._handshake.result is not None:
            new = self._handshake.result
            self._server._auths[new.key.key_id] = Authorization(
                key=new.key, user_id=None, salt=new.salt, dc_id=self.dc_id
            )
            self._handshake = None
            log.info("%r: new auth key %016x", self, new.key.key_id)

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
            self.send(bytes(types.FutureSalts(req_msg_id=msg_id, now=int(time.time()), salts=[salt])), response=True)
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
