"""Logging in at a terminal: phone and code, or a QR code scanned with the phone; then the
two-step verification password if the account has one.

Telegram's steps (core.telegram.org/api/auth, /api/qr-login, /api/srp) are reached through a
:class:`LoginPort` (the adapter's ``TelethonLogin``), whose every refusal is a
:class:`~voicebot.errors.TelegramError` with Telegram's own name; what each one means for the
person typing is decided here, without Telethon, so it is tested offline and over the wire.

Example::

    who = await interactive_login(TelethonLogin(client), Console(), qr=False)
    print(f"Logged in as {who}")
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import io
import os
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Protocol

import segno

from voicebot.errors import ConfigError, LoginFailed, RateLimited, TelegramError
from voicebot.messages import CodeSent, QrCode

ATTEMPTS = 5  # wrong codes or passwords in one run before giving up (Telegram counts them too)
SHORT_WAIT = 120  # a flood wait up to this is waited out with a message; longer ones end the run
QR_PATIENCE = 600  # seconds of fresh QR codes before giving up

PHONE_PROMPT = "Phone number, international format (e.g. +44 7700 900123): "
# One line per auth.SentCodeType (core.telegram.org/constructor/auth.sentCodeType*): where to look.
CODE_VIA = {
    "app": 'Telegram sent a {code} to your Telegram app (a message from "Telegram").',
    "sms": "Telegram sent a {code} by SMS.",
    "call": "Telegram will call you and read out a {code}.",
    # "The phone code will then be the phone number itself" (auth.sentCodeTypeFlashCall).
    "flash_call": "Telegram will ring you once and hang up: the calling number ({hint}) is the code.",
    # "The last digits of the phone number that calls are the code" (auth.sentCodeTypeMissedCall).
    "missed_call": "Telegram will ring you once from a number starting {hint}: its last digits are the {code}.",
    "email": "Telegram sent a {code} to your login email ({hint}).",
    "fragment": "Telegram sent a {code} to this number on Fragment: open {hint} to read it.",
    # Delivered "after Firebase attestation" (auth.sentCodeTypeFirebaseSms), which only official apps pass.
    "firebase": "Telegram may send a {code} by SMS, but only after a check official apps make; "
    "if none comes, use `login --qr`.",
    "sms_word": "Telegram sent a secret word by SMS{starting}: type that word as the code.",
    "sms_phrase": "Telegram sent a secret phrase by SMS{starting}: type that phrase as the code.",
}
# No code is coming: the login ends with this line (exit 1).
NO_CODE = {
    # "The user should add and verify an email address in order to login" (auth.sentCodeTypeSetUpEmailRequired).
    "setup_email": "Telegram wants a login email on this account first: set up a login email in an official "
    "Telegram app first, or use `python -m voicebot login --qr`",
    # auth.sentCodePaymentRequired: a paid SMS, which "Official apps may receive".
    "paid": "Telegram sends codes to this number only as a paid SMS, which only the official apps can buy: "
    "use `python -m voicebot login --qr`",
}
WORDS = ("sms_word", "sms_phrase")  # codes with letters and spaces: typed as they are
QR_HELP = (
    "Scan this QR code with Telegram on your phone: Settings → Devices → Link Desktop Device.\n"
    "It is replaced every {seconds:.0f} s until scanned; Ctrl+C gives up "
    "(`login` without --qr logs in with phone and code)."
)


class LoginPort(Protocol):
    """Telegram's login steps. Each raises :class:`TelegramError` (Telegram's name) when refused."""

    async def me(self) -> str | None:
        """Who is logged in on this session, or None."""

    async def send_code(self, phone: str) -> CodeSent:
        """auth.sendCode"""

    async def sign_in(self, phone: str, code: str) -> str:
        """auth.signIn with the code last sent to ``phone``; SESSION_PASSWORD_NEEDED with 2FA."""

    async def password_hint(self) -> str | None:
        """account.getPassword's hint."""

    async def check_password(self, password: str) -> str:
        """auth.checkPassword (SRP); PASSWORD_HASH_INVALID when wrong."""

    async def qr_code(self) -> QrCode | str:
        """auth.exportLoginToken: a new code, or who logged in once a phone accepted one."""

    async def wait_for_scan(self, until: float) -> None:
        """Return when a phone accepted the code (updateLoginToken), or at ``until``."""


class Terminal(Protocol):
    """The person logging in."""

    async def ask(self, prompt: str) -> str: ...

    async def secret(self, prompt: str) -> str: ...

    def say(self, text: str) -> None: ...


class Console:
    """The real terminal: prompts on stdout, answers from stdin, the password unechoed.

    Input is read in a thread, so the connection stays alive (pings, the QR update) while the
    person looks for the code; the thread is a daemon, so Ctrl+C never waits for Enter. Used as
    a context manager it puts the terminal back as it found it: getpass turns echo off, and a
    Ctrl+C at the password prompt ends the process before getpass can turn it on again.

    Example::

        with Console() as console:
            asyncio.run(interactive_login(port, console))
    """

    def __enter__(self) -> Console:
        try:
            self._saved = termios.tcgetattr(sys.stdin.fileno())
        except (termios.error, OSError, ValueError):
            self._saved = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)

    async def ask(self, prompt: str) -> str:
        return (await _in_thread(input, prompt)).strip()

    async def secret(self, prompt: str) -> str:
        return await _in_thread(getpass.getpass, prompt)

    def say(self, text: str) -> None:
        print(text, flush=True)


async def _in_thread(read: Callable[[str], str], prompt: str) -> str:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(value: str | None, error: BaseException | None) -> None:
        if not answer.done():
            answer.set_exception(error) if error is not None else answer.set_result(value or "")

    def run() -> None:
        try:
            value = read(prompt)
        except BaseException as exc:  # EOFError on Ctrl+D, and anything else, to the caller
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=run, name="voicebot-prompt", daemon=True).start()
    try:
        return await answer
    except EOFError:
        raise LoginFailed("login cancelled (end of input)") from None


def render_qr(url: str, *, color: bool | None = None) -> str:
    """``url`` as a QR code for a terminal, two modules per character (Unicode half blocks).

    Light modules are drawn and dark ones left blank, in explicit white on black (ANSI) so the
    code reads the same on dark and light terminal themes; ``NO_COLOR`` (no-color.org) turns
    the colours off and leaves the terminal's own (a dark background then).

    Example::

        print(render_qr("tg://login?token=AQID"))
    """
    if color is None:
        color = not os.environ.get("NO_COLOR")
    out = io.StringIO()
    segno.make(url, error="m", micro=False).terminal(out=out, compact=True)  # 4-module quiet zone
    lines = out.getvalue().rstrip("\n").split("\n")
    if color:
        lines = [f"\x1b[97;40m{line}\x1b[0m" for line in lines]
    return "\n".join(lines)


async def interactive_login(port: LoginPort, terminal: Terminal, *, qr: bool = False) -> str:
    """Log in as the person at ``terminal`` directs; returns who is now logged in.

    Raises :class:`LoginFailed` (give up, one line), :class:`ConfigError` (Telegram refused the
    API_ID/API_HASH pair).
    """
    who = await port.me()
    if who is not None:
        terminal.say(f"This session is already logged in as {who}.")
        return who
    try:
        return await (_by_qr(port, terminal) if qr else _by_phone(port, terminal))
    except TelegramError as exc:
        if exc.name == "API_ID_INVALID":
            raise ConfigError(
                "API_ID",
                "Telegram refuses this API_ID/API_HASH pair; copy both again from "
                "https://my.telegram.org (API development tools)",
            ) from None
        if isinstance(exc, RateLimited):
            raise LoginFailed(
                f"Telegram asks to wait {_duration(exc.seconds)} before trying again ({exc.name}); log in after that"
            ) from None
        raise LoginFailed(f"Telegram refused the login ({exc.name})") from None


async def _by_phone(port: LoginPort, terminal: Terminal) -> str:
    phone, sent = await _send_code(port, terminal)
    for _ in range(ATTEMPTS):
        code = (await terminal.ask("Login code: ")).strip()
        if sent.via not in WORDS:
            code = code.replace(" ", "").replace("-", "")
        if not code:
            continue
        try:
            return await port.sign_in(phone, code)
        except TelegramError as exc:
            if exc.name in ("PHONE_CODE_INVALID", "PHONE_CODE_EMPTY"):
                terminal.say("That code is wrong; check it and type it again.")
            elif exc.name == "PHONE_CODE_EXPIRED":
                terminal.say("That code has expired; asking Telegram for a new one.")
                sent = await _resend(port, terminal, phone)
            elif exc.name == "SESSION_PASSWORD_NEEDED":
                return await _password(port, terminal)
            elif exc.name == "PHONE_NUMBER_UNOCCUPIED":
                raise LoginFailed("no Telegram account uses this number: sign up in a Telegram app first") from None
            else:
                raise
    raise LoginFailed(f"{ATTEMPTS} wrong codes in a row; run login again for a new code")


async def _send_code(port: LoginPort, terminal: Terminal) -> tuple[str, CodeSent]:
    for _ in range(ATTEMPTS):
        phone = await terminal.ask(PHONE_PROMPT)
        if not phone:
            continue
        try:
            return phone, await _resend(port, terminal, phone)
        except TelegramError as exc:
            if exc.name != "PHONE_NUMBER_INVALID":
                raise
            terminal.say(
                "Telegram does not accept this phone number. Type it in international format, "
                "with the country code, e.g. +44 7700 900123."
            )
    raise LoginFailed("no valid phone number given")


async def _resend(port: LoginPort, terminal: Terminal, phone: str) -> CodeSent:
    """auth.sendCode, waiting out a short flood wait with a message (a long one ends the run)."""
    while True:
        try:
            sent = await port.send_code(phone)
            break
        except RateLimited as exc:
            if exc.seconds > SHORT_WAIT:
                raise
            terminal.say(f"Telegram asks to wait {_duration(exc.seconds)} before sending a code; waiting…")
            await asyncio.sleep(exc.seconds + 1)
    if sent.via in NO_CODE:
        raise LoginFailed(NO_CODE[sent.via])
    code = f"{sent.length}-digit code" if sent.length else "code"
    starting = f' (it starts with "{sent.hint}")' if sent.hint else ""
    line = CODE_VIA.get(sent.via, "Telegram sent a {code}.")
    terminal.say(line.format(code=code, hint=sent.hint or "?", starting=starting))
    return sent


async def _password(port: LoginPort, terminal: Terminal) -> str:
    hint = await port.password_hint()
    terminal.say("This account has two-step verification." + (f" Password hint: {hint}" if hint else ""))
    for _ in range(ATTEMPTS):
        password = await terminal.secret("Two-step verification password: ")
        if not password:
            continue
        try:
            return await port.check_password(password)
        except TelegramError as exc:
            if exc.name != "PASSWORD_HASH_INVALID":
                raise
            terminal.say("Wrong password; try again.")
    raise LoginFailed(f"{ATTEMPTS} wrong passwords in a row; run login again")


async def _by_qr(port: LoginPort, terminal: Terminal) -> str:
    """core.telegram.org/api/qr-login: show the token as a QR code; when it expires, export a
    new one; when a phone accepts it (updateLoginToken), export again to finish."""
    give_up = time.monotonic() + QR_PATIENCE
    shown = 0
    while time.monotonic() < give_up:
        try:
            code = await port.qr_code()
        except TelegramError as exc:
            if exc.name != "SESSION_PASSWORD_NEEDED":
                raise
            return await _password(port, terminal)
        if isinstance(code, str):
            return code
        if shown:
            terminal.say("The QR code expired; here is a new one.")
        else:
            terminal.say(QR_HELP.format(seconds=max(1.0, code.expires - time.time())))
        terminal.say(render_qr(code.url))
        shown += 1
        await port.wait_for_scan(code.expires)
    raise LoginFailed(f"no phone scanned the QR code in {QR_PATIENCE // 60} minutes; run login --qr again")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
