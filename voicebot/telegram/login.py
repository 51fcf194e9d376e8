"""Telegram's login steps for :mod:`voicebot.login` (its ``LoginPort``, satisfied structurally:
this package never imports the core's login flow).

Example::

    port = TelethonLogin(client)
    sent = await port.send_code("+44 7700 900123")     # CodeSent(via='app', length=5)
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable
from typing import TypeVar

from telethon import TelegramClient, errors, events, functions, utils
from telethon.tl import types

from voicebot.errors import RateLimited, TelegramError
from voicebot.messages import CodeSent, QrCode

from .convert import display_name
from .errors import translate

T = TypeVar("T")


# Every auth.SentCodeType of Telethon 1.45's layer (tl/types/auth.py), and the field that tells
# the person where to look (core.telegram.org/type/auth.SentCodeType).
_CODE_VIA = {
    types.auth.SentCodeTypeApp: ("app", None),
    types.auth.SentCodeTypeSms: ("sms", None),
    types.auth.SentCodeTypeCall: ("call", None),
    types.auth.SentCodeTypeFlashCall: ("flash_call", "pattern"),
    types.auth.SentCodeTypeMissedCall: ("missed_call", "prefix"),
    types.auth.SentCodeTypeEmailCode: ("email", "email_pattern"),
    types.auth.SentCodeTypeSetUpEmailRequired: ("setup_email", None),
    types.auth.SentCodeTypeFragmentSms: ("fragment", "url"),
    types.auth.SentCodeTypeFirebaseSms: ("firebase", None),
    types.auth.SentCodeTypeSmsWord: ("sms_word", "beginning"),
    types.auth.SentCodeTypeSmsPhrase: ("sms_phrase", "beginning"),
}


async def _rpc(call: Awaitable[T]) -> T:
    """Await one login step; every refusal leaves as Telegram names it (a flood as RateLimited)."""
    try:
        return await call
    except (errors.RPCError, ConnectionError, TimeoutError) as exc:
        raise translate(exc, "login") from exc


def _who(user: types.User) -> str:
    name = display_name(user) or str(user.id)
    return f"{name} (@{user.username})" if user.username else name


class TelethonLogin:
    """The login steps of :class:`voicebot.login.LoginPort` on a connected client
    (core.telegram.org/api/auth, /api/srp, /api/qr-login).

    Example::

        port = TelethonLogin(client)
        sent = await port.send_code("+44 7700 900123")     # CodeSent(via='app', length=5)
        who = await port.sign_in("+44 7700 900123", "12345")
    """

    def __init__(self, client: TelegramClient):
        self.client = client
        self._hashes: dict[str, str] = {}  # phone -> phone_code_hash of the last code sent
        self._scanned = asyncio.Event()
        client.add_event_handler(self._on_scan, events.Raw(types.UpdateLoginToken))

    async def _on_scan(self, update: types.UpdateLoginToken) -> None:
        self._scanned.set()

    async def me(self) -> str | None:
        me = await self.client.get_me()
        return _who(me) if me is not None else None

    async def send_code(self, phone: str) -> CodeSent:
        phone = utils.parse_phone(phone) or phone
        sent = await _rpc(
            self.client(
                functions.auth.SendCodeRequest(phone, self.client.api_id, self.client.api_hash, types.CodeSettings())
            )
        )
        if isinstance(sent, types.auth.SentCodePaymentRequired):  # a paid SMS: "Official apps may receive this"
            return CodeSent(via="paid")
        if not isinstance(sent, types.auth.SentCode):  # auth.sentCodeSuccess: needs a future_auth_token we never keep
            raise TelegramError("SENT_CODE_SUCCESS")
        self._hashes[phone] = sent.phone_code_hash
        via, field = _CODE_VIA.get(type(sent.type), ("other", None))
        hint = getattr(sent.type, field, None) if field else None
        return CodeSent(via=via, length=getattr(sent.type, "length", None), hint=hint or None)

    async def sign_in(self, phone: str, code: str) -> str:
        phone = utils.parse_phone(phone) or phone
        return await self._signed_in(self.client.sign_in(phone, code, phone_code_hash=self._hashes.get(phone, "")))

    async def _signed_in(self, call: Awaitable[types.User]) -> str:
        """Who signed in. A long flood wait on the update state Telethon asks for right after
        (``_on_login``, client/auth.py; shorter ones wait in VoicebotClient) comes once the
        key is bound: logged in all the same."""
        try:
            return _who(await _rpc(call))
        except RateLimited:
            if not await self.client.is_user_authorized():  # True from the moment _on_login starts
                raise
            me = await _rpc(self.client.get_me())
            return _who(me) if me is not None else "this account"

    async def password_hint(self) -> str | None:
        password = await _rpc(self.client(functions.account.GetPasswordRequest()))
        return password.hint or None

    async def check_password(self, password: str) -> str:
        # Telethon computes the SRP proof (telethon/password.py) from a fresh account.getPassword.
        return await self._signed_in(self.client.sign_in(password=password))

    async def qr_code(self) -> QrCode | str:
        client = self.client
        answer = await _rpc(client(functions.auth.ExportLoginTokenRequest(client.api_id, client.api_hash, [])))
        if isinstance(answer, types.auth.LoginTokenMigrateTo):  # the account lives on another DC
            await client._switch_dc(answer.dc_id)
            answer = await _rpc(client(functions.auth.ImportLoginTokenRequest(answer.token)))
        if isinstance(answer, types.auth.LoginTokenSuccess):
            # What QRLogin.wait does (custom/qrlogin.py).
            return await self._signed_in(client._on_login(answer.authorization.user))
        self._scanned.clear()  # any scan so far is answered by this very export
        token = base64.urlsafe_b64encode(answer.token).decode().rstrip("=")
        return QrCode(url=f"tg://login?token={token}", expires=answer.expires.timestamp())

    async def wait_for_scan(self, until: float) -> None:
        try:
            await asyncio.wait_for(self._scanned.wait(), max(1.0, until - time.time()))
        except TimeoutError:
            pass
