"""Two data centres (core.telegram.org/api/datacenter): a fresh Telethon session starts on DC 2
(telegrambaseclient.py, DEFAULT_DC_ID), so an account that lives on DC 1 logs in across DCs —
``auth.loginTokenMigrateTo`` → ``auth.importLoginToken`` on DC 1 (api/qr-login), or
PHONE_MIGRATE_1 on ``auth.sendCode`` — and a voice whose file is stored on another DC is
fetched there (``auth.exportAuthorization`` / ``auth.importAuthorization``, then
``upload.getFile``). ``login`` and ``run`` as they ship, typed into a terminal.
"""

from __future__ import annotations

import time

import pytest
from telethon.sessions import SQLiteSession

from .helpers import EXPECTED, FIXTURES, wer
from .terminal import qr_codes
from .test_login import (
    PHONE,
    _accept,
    alices_account,
    logged_in_session,
    phone_of,
    session_user,
    type_phone,
    voicebot,
)
from .test_login import telegram as telegram

pytestmark = pytest.mark.wire


def alice_on_dc1(telegram, tmp_path):
    alice = alices_account(telegram, tmp_path)
    telegram.call(telegram.server.home_on, alice, 1)
    return alice


def saved_dc(tmp_path) -> int:
    session = SQLiteSession(str(tmp_path / "data" / "voicebot"))
    try:
        return session.dc_id
    finally:
        session.close()


def test_qr_login_of_an_account_on_another_dc(telegram, tmp_path):
    alice = alice_on_dc1(telegram, tmp_path)
    phone = phone_of(telegram, alice)  # the phone lives on DC 1 too
    with voicebot(tmp_path, "login", "--qr") as term:
        (url,) = qr_codes(term.expect("▀\n"))
        telegram.call(_accept, phone, url)
        term.expect("Logged in as Alice")
        assert term.wait() == 0
    assert telegram.server.calls["ImportLoginTokenRequest"] == 1
    assert saved_dc(tmp_path) == 1  # the session now names DC 1, with a key made there
    assert session_user(telegram, tmp_path / "data").id == alice.id


def test_qr_login_across_dcs_then_the_password(telegram, tmp_path):
    alice = alice_on_dc1(telegram, tmp_path)
    telegram.call(telegram.server.set_password, alice, "correct horse")
    phone = phone_of(telegram, alice)
    with voicebot(tmp_path, "login", "--qr") as term:
        (url,) = qr_codes(term.expect("▀\n"))
        telegram.call(_accept, phone, url)
        term.expect("two-step verification")  # importLoginToken: SESSION_PASSWORD_NEEDED
        term.expect("password:")
        term.type("correct horse")
        term.expect("Logged in as Alice")
        assert term.wait() == 0
    assert session_user(telegram, tmp_path / "data").id == alice.id


def test_phone_login_follows_phone_migrate(telegram, tmp_path):
    """auth.sendCode on DC 2 is PHONE_MIGRATE_1; Telethon moves to DC 1 and asks again there
    (client/users.py, _call)."""
    alice = alice_on_dc1(telegram, tmp_path)
    with voicebot(tmp_path, "login") as term:
        type_phone(term)
        term.expect("by SMS")
        term.expect("Login code:")
        term.type(telegram.call(telegram.server.login_code, PHONE))
        term.expect("Logged in as Alice")
        assert term.wait() == 0
    assert telegram.server.calls["SendCodeRequest"] == 2  # refused on DC 2, sent on DC 1
    assert saved_dc(tmp_path) == 1
    assert session_user(telegram, tmp_path / "data").id == alice.id


def test_a_voice_stored_on_another_dc_is_transcribed(telegram, tmp_path, model_path):
    alice = alices_account(telegram, tmp_path)  # on DC 2, with the bot
    logged_in_session(telegram, alice, tmp_path / "data")
    bob = telegram.call(telegram.server.create_user, "Bob", "bob")

    def answers(voice: int) -> list[str]:
        return [
            m.message
            for m in telegram.call(telegram.server.history, bob, alice)
            if m.out is False and getattr(m.reply_to, "reply_to_msg_id", None) == voice
        ]

    with voicebot(tmp_path, "run", WHISPER_MODEL=model_path, WHISPER_BEAM_SIZE="1", LOG_LEVEL="INFO"):
        telegram.call(telegram.server.wait_online, alice, 120)
        telegram.call(telegram.server.store_files_on, 1)
        voice = telegram.call(
            telegram.server.send_message, bob, alice, voice=(FIXTURES / "hello.ogg").read_bytes(), duration=5
        )
        telegram.call(telegram.server.store_files_on, 2)
        deadline = time.monotonic() + 120
        while not any(a and not a.startswith("🎙") for a in answers(voice)):
            assert time.monotonic() < deadline, f"never answered: {answers(voice)}"
            time.sleep(0.2)
        (text,) = answers(voice)
    assert wer(EXPECTED["hello.ogg"], text) <= 0.25, text
    assert telegram.server.calls["ExportAuthorizationRequest"] >= 1
    assert telegram.server.calls["ImportAuthorizationRequest"] >= 1
