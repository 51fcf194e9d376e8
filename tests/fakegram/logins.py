"""Logging in, as Telegram documents it: phone codes, two-step verification, QR tokens, sessions.

* Phone and code (core.telegram.org/api/auth, /method/auth.sendCode, /method/auth.signIn): a
  code goes to the account's logged-in apps (``auth.sentCodeTypeApp``, a message from the
  service account 777000) or, with none, by SMS (``auth.sentCodeTypeSms``); wrong code
  PHONE_CODE_INVALID, a used, superseded or expired one PHONE_CODE_EXPIRED, a number that
  cannot be a phone number PHONE_NUMBER_INVALID, an unknown api_id API_ID_INVALID, a number
  without an account ``auth.authorizationSignUpRequired``.
* Two-step verification (core.telegram.org/api/srp): the right code on an account with a
  password is 401 SESSION_PASSWORD_NEEDED; ``account.getPassword`` hands out the SRP
  parameters and a fresh ``srp_B``/``srp_id``; ``auth.checkPassword`` proves the password
  with M1, which the server checks against the verifier ``v = g^x mod p`` it stores (never the
  password). A wrong one is PASSWORD_HASH_INVALID; every ``srp_id`` works once (SRP_ID_INVALID).
* QR login (core.telegram.org/api/qr-login): ``auth.exportLoginToken`` gives a token valid for
  30 s; a logged-in app's ``auth.acceptLoginToken`` accepts it (AUTH_TOKEN_INVALID / _EXPIRED /
  _ALREADY_ACCEPTED) and the exporting session gets ``updateLoginToken``; its next
  ``auth.exportLoginToken`` returns ``auth.loginTokenSuccess``, or SESSION_PASSWORD_NEEDED.
* Data centres (core.telegram.org/api/datacenter): auth.sendCode for a number registered on
  another DC is 303 PHONE_MIGRATE_X ("we request that it establish a connection with a
  different DC first"); a QR token accepted by an account of another DC makes the next
  ``auth.exportLoginToken`` answer ``auth.loginTokenMigrateTo`` and the app "should respond by
  calling auth.importLoginToken with the specified token, to the specified DC" (api/qr-login);
  ``auth.exportAuthorization`` (DC_ID_INVALID for this DC) gives an id and bytes that
  ``auth.importAuthorization`` on the target DC logs in once (AUTH_BYTES_INVALID otherwise).
* Sessions (core.telegram.org/method/account.getAuthorizations, account.resetAuthorization):
  terminating one unbinds its key, whose requests then get 401 AUTH_KEY_UNREGISTERED; a session
  younger than 24 h may not terminate others (FRESH_RESET_AUTHORISATION_FORBIDDEN).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telethon.tl import TLObject, types

from .handshake import DH_G, DH_PRIME
from .records import DC_IDS, RpcFail, UserRecord, now

if TYPE_CHECKING:
    from .connection import Authorization
    from .world import World

SERVICE_USER_ID = 777000  # "Telegram": login codes arrive from it in the apps
CODE_LENGTH = 5
# Telegram does not document how long a code lives; tests expire codes with expire_login_codes().
CODE_LIFETIME = 600
# "an expiration date (usually 30 seconds)" (core.telegram.org/api/qr-login).
TOKEN_LIFETIME = 30
FRESH_SESSION = 86_400  # account.resetAuthorization: FRESH_RESET_AUTHORISATION_FORBIDDEN below 24 h
OLD_DEVICE_AGE = 30 * 86_400  # pre-shared keys stand for devices logged in long ago


def normalize_phone(phone: str) -> str:
    """Digits only, as ``auth.sendCode`` takes "+44 7700 900123" and "447700900123" alike;
    PHONE_NUMBER_INVALID when it cannot be an international number (E.164: at most 15 digits,
    no leading 0)."""
    digits = re.sub(r"[\s()+.-]", "", phone)
    if not re.fullmatch(r"[1-9]\d{6,14}", digits):
        raise RpcFail(406, "PHONE_NUMBER_INVALID")
    return digits


def _sha256(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _pad(n: int) -> bytes:
    return n.to_bytes(256, "big")


def password_hash(password: str, salt1: bytes, salt2: bytes) -> int:
    """x = PH2(password, salt1, salt2) of core.telegram.org/api/srp:
    SH(data, salt) = H(salt | data | salt); PH1 = SH(SH(password, salt1), salt2);
    PH2 = SH(pbkdf2(sha512, PH1, salt1, 100000), salt2)."""
    ph1 = _sha256(salt2, _sha256(salt1, password.encode(), salt1), salt2)
    return int.from_bytes(_sha256(salt2, hashlib.pbkdf2_hmac("sha512", ph1, salt1, 100_000), salt2), "big")


@dataclass
class SentCode:
    phone: str
    hash: str
    code: str
    expires: float
    user_id: int | None


@dataclass
class Password:
    """What the server keeps of a 2FA password: the salts and the verifier, never the password."""

    salt1: bytes
    salt2: bytes
    verifier: int
    hint: str | None


@dataclass
class Challenge:
    """One ``account.getPassword`` answer: the server's secret b and public B."""

    user_id: int
    b: int
    B: int


@dataclass
class LoginToken:
    token: bytes
    auth: Authorization
    expires: float
    accepted_by: int | None = None
    used: bool = False  # the exporting session logged in with it


@dataclass
class Logins:
    """The login state of the fake: apps, codes, passwords, QR tokens. Owned by the server.

    ``push(auth, updates)`` sends updates to the live connections of one auth key.
    """

    world: World
    auths: dict[int, Authorization]
    push: Callable[[Authorization, TLObject], None]
    # api_id -> api_hash of the apps registered at my.telegram.org (core.telegram.org/api/obtaining_api_id).
    apps: dict[int, str] = field(default_factory=lambda: {1: "fakegram"})
    codes: dict[str, SentCode] = field(default_factory=dict)
    sms: dict[str, list[str]] = field(default_factory=dict)  # what each phone received by SMS
    passwords: dict[int, Password] = field(default_factory=dict)
    challenges: dict[int, Challenge] = field(default_factory=dict)
    tokens: dict[bytes, LoginToken] = field(default_factory=dict)
    token_lifetime: float = TOKEN_LIFETIME
    # What auth.sendCode answers instead of app/SMS (set_code_type): any auth.SentCodeType, or
    # auth.sentCodePaymentRequired. Which one Telegram picks is its own choice (api/auth).
    code_type: TLObject | None = None
    migrations: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # login token -> (user id, DC)
    exported: dict[tuple[int, bytes], int] = field(default_factory=dict)  # (id, bytes) -> target DC

    # region phone and code

    def check_app(self, api_id: int, api_hash: str) -> None:
        if self.apps.get(api_id) != api_hash:
            raise RpcFail(400, "API_ID_INVALID")

    def user_by_phone(self, phone: str) -> UserRecord | None:
        return next((u for u in self.world.users.values() if u.phone == phone and not u.deleted), None)

    def logged_in(self, user: UserRecord) -> list[Authorization]:
        return [a for a in self.auths.values() if a.user_id == user.id and not a.exported]

    def send_code(self, phone: str, api_id: int, api_hash: str, dc_id: int = DC_IDS[0]) -> types.auth.SentCode:
        self.check_app(api_id, api_hash)
        phone = normalize_phone(phone)
        user = self.user_by_phone(phone)
        if user is not None and user.home_dc != dc_id:
            raise RpcFail(303, f"PHONE_MIGRATE_{user.home_dc}")
        code = "".join(random.choice("0123456789") for _ in range(CODE_LENGTH))
        sent = SentCode(phone, os.urandom(9).hex(), code, time.time() + CODE_LIFETIME, user.id if user else None)
        self.codes[phone] = sent  # a new code supersedes the previous one
        text = f"Login code: {code}. Do not give this code to anyone, even if they say they are from Telegram!"
        if isinstance(self.code_type, types.auth.SentCodePaymentRequired):
            return self.code_type  # type: ignore[return-value]
        if self.code_type is not None:
            self.sms.setdefault(phone, []).append(text)  # delivered out of band; the test reads login_code()
            return types.auth.SentCode(type=self.code_type, phone_code_hash=sent.hash)
        if user is not None and self.logged_in(user):
            # "The code was sent through the telegram app" (core.telegram.org/constructor/auth.sentCodeTypeApp).
            self.world.send(self.service_user(), user, text=text)
            kind: TLObject = types.auth.SentCodeTypeApp(length=CODE_LENGTH)
        else:
            self.sms.setdefault(phone, []).append(text)
            kind = types.auth.SentCodeTypeSms(length=CODE_LENGTH)
        return types.auth.SentCode(type=kind, phone_code_hash=sent.hash)

    def service_user(self) -> UserRecord:
        service = self.world.users.get(SERVICE_USER_ID)
        if service is None:
            service = UserRecord(
                id=SERVICE_USER_ID, access_hash=random.getrandbits(63), first_name="Telegram", phone="42777"
            )
            self.world.users[SERVICE_USER_ID] = service
        return service

    def sign_in(self, auth: Authorization, phone: str, phone_code_hash: str, code: str | None) -> TLObject:
        phone = normalize_phone(phone)
        if not code:
            raise RpcFail(400, "PHONE_CODE_EMPTY")
        sent = self.codes.get(phone)
        if sent is None or sent.hash != phone_code_hash or time.time() > sent.expires:
            raise RpcFail(400, "PHONE_CODE_EXPIRED")
        if code != sent.code:
            raise RpcFail(400, "PHONE_CODE_INVALID")
        del self.codes[phone]  # a code logs in once
        if sent.user_id is None:
            return types.auth.AuthorizationSignUpRequired()
        return self.complete(auth, self.world.users[sent.user_id])

    def complete(self, auth: Authorization, user: UserRecord) -> types.auth.Authorization:
        """The key now belongs to ``user`` — unless the account has a password to prove first."""
        if user.id in self.passwords:
            auth.password_pending = user.id
            raise RpcFail(401, "SESSION_PASSWORD_NEEDED")
        return self.bind(auth, user)

    def bind(self, auth: Authorization, user: UserRecord) -> types.auth.Authorization:
        auth.user_id, auth.password_pending, auth.created = user.id, None, now()
        return types.auth.Authorization(user=self.world.user_tl(user, user))

    def expire_codes(self) -> None:
        for sent in self.codes.values():
            sent.expires = 0

    # endregion

    # region two-step verification (core.telegram.org/api/srp)

    def set_password(self, user: UserRecord, password: str, hint: str | None = None) -> None:
        salt1, salt2 = os.urandom(40), os.urandom(16)
        verifier = pow(DH_G, password_hash(password, salt1, salt2), DH_PRIME)
        self.passwords[user.id] = Password(salt1, salt2, verifier, hint)

    def _algo(self, salt1: bytes, salt2: bytes) -> TLObject:
        return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=salt1, salt2=salt2, g=DH_G, p=_pad(DH_PRIME)
        )

    def password_info(self, user: UserRecord) -> types.account.Password:
        """account.getPassword: the parameters, and a fresh B = k*v + g^b for this attempt."""
        common = dict(
            new_algo=self._algo(os.urandom(32), os.urandom(16)),
            new_secure_algo=types.SecurePasswordKdfAlgoSHA512(salt=os.urandom(32)),
            secure_random=os.urandom(256),
        )
        stored = self.passwords.get(user.id)
        if stored is None:
            return types.account.Password(has_password=False, **common)
        k = int.from_bytes(_sha256(_pad(DH_PRIME), _pad(DH_G)), "big")
        while True:
            b = int.from_bytes(os.urandom(256), "big")
            g_b = pow(DH_G, b, DH_PRIME)
            # The client refuses a g^b too close to 0 or p (api/srp: "check ... 2^{2048-64}").
            if g_b.bit_length() >= 2048 - 64 and (DH_PRIME - g_b).bit_length() >= 2048 - 64:
                break
        B = (k * stored.verifier + g_b) % DH_PRIME
        srp_id = random.getrandbits(63)
        self.challenges[srp_id] = Challenge(user.id, b, B)
        return types.account.Password(
            has_password=True,
            current_algo=self._algo(stored.salt1, stored.salt2),
            srp_B=_pad(B),
            srp_id=srp_id,
            hint=stored.hint,
            **common,
        )

    def check_password(self, auth: Authorization, check: TLObject) -> types.auth.Authorization:
        if auth.password_pending is None:
            raise RpcFail(401, "AUTH_KEY_UNREGISTERED")
        if not isinstance(check, types.InputCheckPasswordSRP):
            raise RpcFail(400, "PASSWORD_HASH_INVALID")
        challenge = self.challenges.pop(check.srp_id, None)  # one try per srp_id
        if challenge is None or challenge.user_id != auth.password_pending:
            raise RpcFail(400, "SRP_ID_INVALID")
        stored = self.passwords[challenge.user_id]
        A = int.from_bytes(check.A, "big")
        if not 0 < A < DH_PRIME:
            raise RpcFail(400, "PASSWORD_HASH_INVALID")
        u = int.from_bytes(_sha256(_pad(A), _pad(challenge.B)), "big")
        # S = (A * v^u) ^ b mod p: the same number the client reaches as (B - k g^x)^(a + u x).
        S = pow(A * pow(stored.verifier, u, DH_PRIME) % DH_PRIME, challenge.b, DH_PRIME)
        K = _sha256(_pad(S))
        expected = _sha256(
            bytes(x ^ y for x, y in zip(_sha256(_pad(DH_PRIME)), _sha256(_pad(DH_G)))),
            _sha256(stored.salt1),
            _sha256(stored.salt2),
            _pad(A),
            _pad(challenge.B),
            K,
        )
        if u == 0 or not hmac.compare_digest(expected, bytes(check.M1)):
            raise RpcFail(400, "PASSWORD_HASH_INVALID")
        return self.bind(auth, self.world.users[challenge.user_id])

    # endregion

    # region QR login (core.telegram.org/api/qr-login)

    def export_token(self, auth: Authorization, api_id: int, api_hash: str) -> TLObject:
        self.check_app(api_id, api_hash)
        mine = [t for t in self.tokens.values() if t.auth is auth and not t.used]
        accepted = next((t for t in mine if t.accepted_by), None)
        if accepted is not None:
            # The second call, after updateLoginToken: the login is done (or needs the password).
            accepted.used = True
            user = self.world.users[accepted.accepted_by]
            if user.home_dc != auth.dc_id:  # "a DC mismatch between the two apps"
                token = os.urandom(32)
                self.migrations[token] = (user.id, user.home_dc)
                return types.auth.LoginTokenMigrateTo(dc_id=user.home_dc, token=token)
            result = self.complete(auth, user)
            return types.auth.LoginTokenSuccess(authorization=result)
        for old in mine:
            old.expires = 0  # a new QR code replaces the previous one: scanning it is AUTH_TOKEN_EXPIRED
        token = LoginToken(os.urandom(32), auth, time.time() + self.token_lifetime)
        self.tokens[token.token] = token
        return types.auth.LoginToken(expires=int(token.expires), token=token.token)

    def import_token(self, auth: Authorization, raw: bytes) -> TLObject:
        """auth.importLoginToken on the DC that auth.loginTokenMigrateTo named."""
        user_id, dc_id = self.migrations.get(bytes(raw), (None, None))
        if user_id is None or dc_id != auth.dc_id:
            raise RpcFail(400, "AUTH_TOKEN_INVALID")
        del self.migrations[bytes(raw)]  # a token logs in once
        return types.auth.LoginTokenSuccess(authorization=self.complete(auth, self.world.users[user_id]))

    def export_authorization(self, user: UserRecord, auth: Authorization, dc_id: int) -> TLObject:
        if dc_id == auth.dc_id or dc_id not in DC_IDS:
            raise RpcFail(400, "DC_ID_INVALID")
        secret = os.urandom(32)
        self.exported[(user.id, secret)] = dc_id
        return types.auth.ExportedAuthorization(id=user.id, bytes=secret)

    def import_authorization(self, auth: Authorization, user_id: int, secret: bytes) -> TLObject:
        if self.exported.pop((user_id, bytes(secret)), None) != auth.dc_id:
            raise RpcFail(400, "AUTH_BYTES_INVALID")
        auth.exported = True
        return self.bind(auth, self.world.users[user_id])

    def accept_token(self, acceptor: UserRecord, raw: bytes) -> types.Authorization:
        token = self.tokens.get(bytes(raw))
        if token is None:
            raise RpcFail(400, "AUTH_TOKEN_INVALID")
        if token.accepted_by is not None:
            raise RpcFail(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
        if time.time() > token.expires:
            raise RpcFail(400, "AUTH_TOKEN_EXPIRED")
        token.accepted_by = acceptor.id
        # "the app that is trying to login will receive an updateLoginToken update"
        self.push(token.auth, types.UpdateShort(update=types.UpdateLoginToken(), date=now()))
        return self.authorization_tl(token.auth, current=False)

    def expire_tokens(self) -> None:
        for token in self.tokens.values():
            token.expires = 0

    # endregion

    # region sessions

    def authorization_tl(self, auth: Authorization, *, current: bool) -> types.Authorization:
        return types.Authorization(
            hash=0 if current else auth.hash,
            current=current,
            device_model=auth.device_model or "Unknown",
            platform="",
            system_version=auth.system_version,
            api_id=auth.api_id,
            app_name="",
            app_version=auth.app_version,
            date_created=auth.created,
            date_active=now(),
            ip="127.0.0.1",
            country="",
            region="",
        )

    def authorizations(self, user: UserRecord, current: Authorization) -> types.account.Authorizations:
        return types.account.Authorizations(
            authorization_ttl_days=180,
            authorizations=[self.authorization_tl(a, current=a is current) for a in self.logged_in(user)],
        )

    def reset_authorization(self, user: UserRecord, current: Authorization, auth_hash: int) -> bool:
        target = next((a for a in self.logged_in(user) if a.hash == auth_hash and a is not current), None)
        if target is None:
            raise RpcFail(400, "HASH_INVALID")
        if now() - current.created < FRESH_SESSION:
            raise RpcFail(406, "FRESH_RESET_AUTHORISATION_FORBIDDEN")
        self.revoke(target)
        return True

    def revoke(self, auth: Authorization) -> None:
        auth.user_id = auth.password_pending = None

    # endregion
