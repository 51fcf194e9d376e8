"""Flood waits inside the calls Telethon makes by itself, with ``flood_sleep_threshold=0``
(which the bot sets so that its own calls' waits are counted and bounded in one place):
a download's chunks (``upload.getFile``), the catch-up (``updates.getDifference``) and the
update state asked for right after sign-in (``updates.getState``)."""

from __future__ import annotations

import asyncio
import os

import pytest
from telethon import events
from telethon.sessions import StringSession

from voicebot import telegram
from voicebot.config import load_settings
from voicebot.telegram.convert import describe

from .test_login import API_HASH, API_ID, PHONE, alices_account, fresh_install, type_phone, voicebot
from .test_login import telegram as telegram_thread  # noqa: F401 (a fixture)

pytestmark = pytest.mark.wire

PART = 128 * 1024


def _settings():
    return load_settings({"API_ID": str(API_ID), "API_HASH": API_HASH}, dotenv_path=None)


async def test_a_flood_wait_mid_download_resumes_from_the_byte_it_reached(fakegram, tmp_path):
    """FLOOD_PREMIUM_WAIT_X: "the query must be automatically repeated by the client after X
    seconds" (core.telegram.org/api/files): the third chunk waits, and the download goes on
    from there, each byte fetched once."""
    alice = fakegram.create_user("Alice", username="alice")
    owner = fakegram.create_user("Owner", username="owner")
    client = telegram.make_client(_settings(), StringSession(fakegram.session_string_for(owner)))
    await client.connect()
    try:
        payload = os.urandom(5 * PART + 1000)  # six chunks
        fakegram.send_message(alice, owner, voice=payload, duration=30)
        (message,) = await client.get_messages("alice", limit=1)
        chat = telegram.TelethonChat(client, owner.id)
        fakegram.inject_error("GetFileRequest", "FLOOD_PREMIUM_WAIT_1", nth=3)
        dest = tmp_path / "voice.ogg"
        await chat.download(describe(message), dest)
    finally:
        await client.disconnect()
    assert dest.read_bytes() == payload
    assert chat.flood_waits == 1  # waited, counted
    offsets = [offset for _, offset, _ in fakegram.file_reads]
    assert offsets == [i * PART for i in range(6)], offsets  # no second request from byte 0
    assert sum(sent for *_, sent in fakegram.file_reads) == len(payload)


async def test_a_flood_wait_on_the_catch_up_does_not_drop_it(fakegram):
    """Telethon ends the difference on a FloodWaitError (client/updates.py, _update_loop) and
    tries again only at the next gap or after 15 min without updates: a voice sent while the
    bot was away would wait that long. The bot's client waits the flood out and catches up."""
    alice = fakegram.create_user("Alice", username="alice")
    owner = fakegram.create_user("Owner", username="owner")
    client = telegram.make_client(_settings(), StringSession(fakegram.session_string_for(owner)))
    seen: asyncio.Queue = asyncio.Queue()
    client.add_event_handler(lambda event: seen.put_nowait(event.raw_text), events.NewMessage(incoming=True))
    me = await telegram.connect(client)
    assert me.id == owner.id
    await client.disconnect()  # the session keeps the update state
    fakegram.send_message(alice, owner, "sent while the bot was away")
    # Over 3 s: Telethon then refuses its own repeats within the wait (client/users.py), so the
    # fake's updatesTooLong after the next call cannot restart the catch-up on its own.
    fakegram.inject_flood_wait("GetDifferenceRequest", 5, user=owner)
    try:
        await telegram.connect(client)
        assert await asyncio.wait_for(seen.get(), 30) == "sent while the bot was away"
    finally:
        await client.disconnect()
    assert fakegram.calls["GetDifferenceRequest"] >= 2  # refused once, asked again


def test_a_flood_wait_right_after_sign_in_is_not_a_failed_login(telegram_thread, tmp_path):  # noqa: F811
    """Telethon asks updates.getState once the key is bound (client/auth.py, _on_login): a flood
    wait there, short or long, leaves the person logged in, and `login` says so."""
    alice = alices_account(telegram_thread, tmp_path)
    telegram_thread.call(telegram_thread.server.inject_flood_wait, "GetStateRequest", 2, user=alice)
    with voicebot(tmp_path, "login") as term:
        type_phone(term)
        term.expect("Login code:")
        term.type(telegram_thread.call(telegram_thread.server.login_code, PHONE))
        term.expect("Logged in as Alice")
        assert term.wait() == 0
    assert telegram_thread.server.calls["GetStateRequest"] >= 2  # waited out, then asked again

    telegram_thread.call(telegram_thread.server.inject_flood_wait, "GetStateRequest", 3600, user=alice)
    (tmp_path / "data" / "voicebot.session").unlink()
    fresh_install(telegram_thread, tmp_path / "data")  # a second login, from scratch
    with voicebot(tmp_path, "login") as term:
        type_phone(term)
        term.expect("Login code:")
        term.type(telegram_thread.call(telegram_thread.server.login_code, PHONE))
        term.expect("Logged in as Alice")
        assert term.wait() == 0
        assert "asks to wait" not in term.screen
