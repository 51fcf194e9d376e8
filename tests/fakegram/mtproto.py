"""Server side of MTProto 2.0 transport and encryption, built from Telethon's own pieces.

Only what a real Telethon client needs when it already owns an auth key:
TcpFull framing (``ConnectionTcpFull``), AES-IGE encryption with the server-side
key derivation (``x = 8``), server msg_id generation and seq_no bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from dataclasses import dataclass
from hashlib import sha256
from zlib import crc32

from telethon.crypto import AES, AuthKey
from telethon.network.mtprotostate import MTProtoState

# Telethon never sends more than ~1 MiB per packet; anything larger is garbage.
MAX_PACKET_SIZE = 4 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that cannot be a valid MTProto packet."""


@dataclass(frozen=True)
class PlainMessage:
    """A decrypted client message: header fields plus the serialized body."""

    salt: int
    session_id: int
    msg_id: int
    seq_no: int
    body: bytes


class TcpFullCodec:
    """Symmetric TcpFull framing: ``len:int32 seq:int32 body crc32:uint32``.

    Mirrors ``telethon.network.connection.tcpfull.FullPacketCodec`` for the server end.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._recv_seq = 0
        self._send_seq = 0

    async def read_packet(self) -> bytes:
        """Read one packet; raises ``asyncio.IncompleteReadError`` on EOF."""
        header = await self._reader.readexactly(8)
        length, seq = struct.unpack("<ii", header)
        if not 12 <= length <= MAX_PACKET_SIZE:
            raise ProtocolError(f"bad TcpFull packet length {length} (only TcpFull is supported)")
        rest = await self._reader.readexactly(length - 8)
        body, (checksum,) = rest[:-4], struct.unpack("<I", rest[-4:])
        if crc32(header + body) != checksum:
            raise ProtocolError("TcpFull CRC32 mismatch")
        if seq != self._recv_seq:
            raise ProtocolError(f"TcpFull seq {seq}, expected {self._recv_seq}")
        self._recv_seq += 1
        return body

    def write_packet(self, body: bytes) -> None:
        data = struct.pack("<ii", len(body) + 12, self._send_seq) + body
        self._send_seq += 1
        self._writer.write(data + struct.pack("<I", crc32(data)))


def read_key_id(packet: bytes) -> int:
    if len(packet) < 8:
        raise ProtocolError("packet too short for an auth_key_id")
    return struct.unpack("<Q", packet[:8])[0]


def decrypt_client_message(auth_key: AuthKey, packet: bytes) -> PlainMessage:
    """Inverse of ``MTProtoState.encrypt_message_data`` (the client side, ``x = 0``)."""
    if len(packet) < 24 + 32 or (len(packet) - 24) % 16:
        raise ProtocolError("encrypted packet has an invalid size")
    msg_key = packet[8:24]
    aes_key, aes_iv = MTProtoState._calc_key(auth_key.key, msg_key, True)
    plain = AES.decrypt_ige(packet[24:], aes_key, aes_iv)
    if sha256(auth_key.key[88 : 88 + 32] + plain).digest()[8:24] != msg_key:
        raise ProtocolError("msg_key does not match the decrypted payload")
    salt, session_id, msg_id, seq_no, length = struct.unpack("<qqqii", plain[:32])
    if not 0 <= length <= len(plain) - 32:
        raise ProtocolError("message length exceeds the payload")
    return PlainMessage(salt, session_id, msg_id, seq_no, plain[32 : 32 + length])


def encrypt_server_message(
    auth_key: AuthKey, salt: int, session_id: int, msg_id: int, seq_no: int, body: bytes
) -> bytes:
    """Encrypt one server message the way ``MTProtoState.decrypt_message_data`` expects (``x = 8``)."""
    data = struct.pack("<qqqii", salt, session_id, msg_id, seq_no, len(body)) + body
    padding = os.urandom(-(len(data) + 12) % 16 + 12)
    msg_key = sha256(auth_key.key[96 : 96 + 32] + data + padding).digest()[8:24]
    aes_key, aes_iv = MTProtoState._calc_key(auth_key.key, msg_key, False)
    return struct.pack("<Q", auth_key.key_id) + msg_key + AES.encrypt_ige(data + padding, aes_key, aes_iv)


class ServerMessageIds:
    """Time-based, strictly increasing server msg_ids and seq_nos for one session.

    MTProto: server msg_id % 4 == 1 for responses, == 3 for everything else (updates).
    Telethon rejects even ids, repeated ids and ids more than 30 s ahead / 300 s behind its clock.
    """

    def __init__(self) -> None:
        self._last = 0
        self._content_count = 0

    def next_msg_id(self, *, response: bool) -> int:
        now = time.time()
        candidate = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        candidate = max(candidate, (self._last & ~3) + 4)
        self._last = candidate | (1 if response else 3)
        return self._last

    def next_seq_no(self, *, content_related: bool) -> int:
        if content_related:
            self._content_count += 1
            return self._content_count * 2 - 1
        return self._content_count * 2
