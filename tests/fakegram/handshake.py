"""Server side of the MTProto auth key creation (core.telegram.org/mtproto/auth_key).

A client without an auth key (a fresh install) sends three unencrypted requests:
``req_pq_multi`` → ``resPQ`` (nonce, server_nonce, pq, the fingerprints of the server's RSA
keys); ``req_DH_params`` (p, q and ``p_q_inner_data`` encrypted with the server's public
key) → ``server_DH_params_ok`` (``server_DH_inner_data`` with g, dh_prime and g_a, AES-IGE
encrypted with a key derived from the nonces); ``set_client_DH_params`` (g_b) → ``dh_gen_ok``.
Both sides then hold ``auth_key = g^(ab) mod dh_prime``. Every check Telegram makes of the
client's answers is made here too; a failed one ends the handshake like a dropped connection.

Telethon's client side is ``telethon/network/authenticator.py``. A client trusts a server key
only if it has its public key (``telethon.crypto.rsa.add_key``): :func:`trust_server_key`
does that for this process, ``tests/fakegram/trusting/sitecustomize.py`` for a child process.
"""

from __future__ import annotations

import os
import secrets
import struct
import time
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path

import rsa
from telethon import helpers
from telethon.crypto import AES, AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, functions, types

HERE = Path(__file__).parent
# A test-only RSA key pair, made for fakegram: nothing but tests trusts it.
PRIVATE_KEY = rsa.PrivateKey.load_pkcs1((HERE / "server_key.pem").read_bytes())
PUBLIC_KEY_PEM = (HERE / "server_key.pub").read_text()
FINGERPRINT = telethon_rsa._compute_fingerprint(rsa.PublicKey.load_pkcs1(PUBLIC_KEY_PEM.encode()))

# The 2048-bit safe prime Telegram uses with g = 3 (core.telegram.org/mtproto/auth_key, "dh_prime";
# the same one Telethon's password.py knows as good_prime).
DH_PRIME = int(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4db"
    "fa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64"
    "2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b41"
    "0dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4"
    "e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf"
    "6f4fadf034b10403119cd8e3b92fcc5b",
    16,
)
DH_G = 3
# "both sides are to check that g, g_a and g_b are greater than 1 and less than dh_prime - 1 ...
# between 2^{2048-64} and dh_prime - 2^{2048-64}" (core.telegram.org/mtproto/auth_key).
SAFETY = 2 ** (2048 - 64)


def trust_server_key() -> None:
    """Make Telethon in this process accept fakegram's RSA key, as it accepts Telegram's."""
    telethon_rsa.add_key(PUBLIC_KEY_PEM, old=False)


class HandshakeError(Exception):
    """The client's request breaks the protocol; Telegram would drop the connection."""


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7, 11, 13, 17):  # deterministic below 3.4e14
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime() -> int:
    while True:
        candidate = secrets.randbits(31) | (1 << 30) | 1
        if _is_prime(candidate):
            return candidate


def _bytes(n: int) -> bytes:
    return telethon_rsa.get_byte_array(n)


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big")


@dataclass
class NewKey:
    """The result of a finished handshake."""

    key: AuthKey
    salt: int


class Handshake:
    """One connection's auth key creation, request by request.

    Example::

        handshake = Handshake()
        answer = handshake.answer(request)      # resPQ, server_DH_params_ok, dh_gen_ok
        handshake.result                        # NewKey once dh_gen_ok was answered
    """

    def __init__(self) -> None:
        self.result: NewKey | None = None
        self._nonce: int | None = None
        self._server_nonce = 0
        self._p = self._q = 0
        self._new_nonce = 0
        self._a = 0
        self._tmp: tuple[bytes, bytes] | None = None

    def answer(self, request: TLObject) -> TLObject:
        if isinstance(request, (functions.ReqPqMultiRequest, functions.ReqPqRequest)):
            return self._res_pq(request)
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._dh_params(request)
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"{type(request).__name__} sent without an auth key")

    def _check_nonces(self, request: TLObject) -> None:
        if request.nonce != self._nonce or request.server_nonce != self._server_nonce:
            raise HandshakeError("nonce or server_nonce does not match")

    def _res_pq(self, request: TLObject) -> types.ResPQ:
        self._nonce = request.nonce
        self._server_nonce = int.from_bytes(os.urandom(16), "big", signed=True)
        p, q = _random_prime(), _random_prime()
        while p == q:
            q = _random_prime()
        self._p, self._q = min(p, q), max(p, q)
        return types.ResPQ(
            nonce=request.nonce,
            server_nonce=self._server_nonce,
            pq=_bytes(self._p * self._q),
            server_public_key_fingerprints=[FINGERPRINT],
        )

    def _dh_params(self, request: functions.ReqDHParamsRequest) -> types.ServerDHParamsOk:
        self._check_nonces(request)
        if (_int(request.p), _int(request.q)) != (self._p, self._q):
            raise HandshakeError("p and q are not the factors of pq")
        if request.public_key_fingerprint != FINGERPRINT:
            raise HandshakeError("unknown public key fingerprint")
        inner = self._decrypt_pq_inner_data(request.encrypted_data)
        if (inner.nonce, inner.server_nonce) != (self._nonce, self._server_nonce):
            raise HandshakeError("p_q_inner_data carries other nonces")
        if (_int(inner.pq), _int(inner.p), _int(inner.q)) != (self._p * self._q, self._p, self._q):
            raise HandshakeError("p_q_inner_data carries other numbers")
        self._new_nonce = inner.new_nonce
        while True:
            self._a = _int(os.urandom(256))
            g_a = pow(DH_G, self._a, DH_PRIME)
            if SAFETY <= g_a <= DH_PRIME - SAFETY:
                break
        answer = bytes(
            types.ServerDHInnerData(
                nonce=self._nonce,
                server_nonce=self._server_nonce,
                g=DH_G,
                dh_prime=_bytes(DH_PRIME),
                g_a=_bytes(g_a),
                server_time=int(time.time()),
            )
        )
        # "answer_with_hash := SHA1(answer) + answer + (0-15 random bytes)", encrypted with
        # tmp_aes_key/tmp_aes_iv derived from new_nonce and server_nonce.
        self._tmp = helpers.generate_key_data_from_nonce(self._server_nonce, self._new_nonce)
        plain = sha1(answer).digest() + answer
        plain += os.urandom(-len(plain) % 16)
        return types.ServerDHParamsOk(
            nonce=self._nonce, server_nonce=self._server_nonce, encrypted_answer=AES.encrypt_ige(plain, *self._tmp)
        )

    def _decrypt_pq_inner_data(self, encrypted: bytes) -> TLObject:
        """RSA without padding, of ``SHA1(data) + data + random bytes`` (255 bytes): what
        Telethon's ``rsa.encrypt`` sends (the pre-RSA_PAD form core.telegram.org/mtproto/auth_key
        still describes for p_q_inner_data)."""
        if len(encrypted) != 256:
            raise HandshakeError("encrypted_data must be 256 bytes")
        value = _int(encrypted)
        if value >= PRIVATE_KEY.n:
            raise HandshakeError("encrypted_data is not below the modulus")
        plain = pow(value, PRIVATE_KEY.d, PRIVATE_KEY.n).to_bytes(255, "big")
        digest, body = plain[:20], plain[20:]
        with BinaryReader(body) as reader:
            inner = reader.tgread_object()
            length = reader.tell_position()
        if sha1(body[:length]).digest() != digest:
            raise HandshakeError("p_q_inner_data hash mismatch")
        if not isinstance(inner, (types.PQInnerData, types.PQInnerDataDc)):
            raise HandshakeError(f"unexpected {type(inner).__name__} inside req_DH_params")
        return inner

    def _dh_gen(self, request: functions.SetClientDHParamsRequest) -> types.DhGenOk:
        self._check_nonces(request)
        if self._tmp is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        plain = AES.decrypt_ige(request.encrypted_data, *self._tmp)
        digest, body = plain[:20], plain[20:]
        with BinaryReader(body) as reader:
            inner = reader.tgread_object()
            length = reader.tell_position()
        if sha1(body[:length]).digest() != digest or not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError("client_DH_inner_data is corrupt")
        if (inner.nonce, inner.server_nonce) != (self._nonce, self._server_nonce):
            raise HandshakeError("client_DH_inner_data carries other nonces")
        g_b = _int(inner.g_b)
        if not SAFETY <= g_b <= DH_PRIME - SAFETY:
            raise HandshakeError("g_b is outside the safe range")
        # Telethon keeps the key as the shortest big-endian form of g^(ab) (authenticator.py,
        # rsa.get_byte_array); the server must hold the very same bytes.
        key = AuthKey(_bytes(pow(g_b, self._a, DH_PRIME)))
        new_nonce = self._new_nonce.to_bytes(32, "little", signed=True)
        server_nonce = self._server_nonce.to_bytes(16, "little", signed=True)
        # "server_salt := substr(new_nonce, 0, 8) XOR substr(server_nonce, 0, 8)"
        salt = struct.unpack("<q", bytes(a ^ b for a, b in zip(new_nonce[:8], server_nonce[:8])))[0]
        self.result = NewKey(key, salt)
        return types.DhGenOk(
            nonce=self._nonce,
            server_nonce=self._server_nonce,
            new_nonce_hash1=key.calc_new_nonce_hash(self._new_nonce, 1),
        )
