"""Telegram away for longer than Telethon's own reconnection lasts: the bot stays up, and the
voices sent before and during the outage are answered once each when it is back."""

import asyncio
import signal
import time

import pytest
from telethon.tl import types

from .botharness import BotProcess
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire

# Telethon 1.45's defaults (connection_retries=5, retry_delay=1) give up after about 35 s of
# refused connections (network/mtprotosender.py, _reconnect); before this fix `run` then
# returned and the process exited 0.
OUTAGE_S = 45


def replies(fakegram, sender, owner, message_id) -> list[str]:
    """What ``sender`` sees in reply to its message ``message_id`` (read on the server)."""
    return [
        m.message
        for m in fakegram.history(sender, owner)
        if isinstance(m, types.Message) and m.reply_to is not None and m.reply_to.reply_to_msg_id == message_id
    ]


def final(texts: list[str]) -> bool:
    return bool(texts) and not any(t.startswith("🎙") for t in texts)


async def test_telegram_unreachable_longer_than_telethons_retries(fakegram, model_path, tmp_path):
    owner = fakegram.create_user("Owner", username="owner")
    alice = fakegram.create_user("Alice", username="alice")
    bot = await BotProcess(fakegram, owner, tmp_path / "bot", model_path).start()
    try:
        before = fakegram.send_message(alice, owner, voice=(FIXTURES / "long.ogg").read_bytes(), duration=53)
        await bot.wait_for_log("transcribing")
        down = time.monotonic()
        await fakegram.go_offline()  # mid-transcription: the answer cannot be delivered now
        during = fakegram.send_message(alice, owner, voice=(FIXTURES / "hello.ogg").read_bytes(), duration=5)
        # Telethon's own retries run out first; the process must neither exit nor stop trying.
        await bot.wait_for_log("Telegram unreachable", timeout=OUTAGE_S + 30)
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        assert bot.process.returncode is None, bot.log.read_text()
        await fakegram.come_back()

        await bot.wait_for_log("Telegram back after", timeout=120)
        deadline = time.monotonic() + 120
        while not (final(replies(fakegram, alice, owner, before)) and final(replies(fakegram, alice, owner, during))):
            assert time.monotonic() < deadline, (replies(fakegram, alice, owner, before), bot.log.read_text())
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # a duplicate would arrive now
        (long_text,) = replies(fakegram, alice, owner, before)
        (hello_text,) = replies(fakegram, alice, owner, during)
        assert wer(EXPECTED["long.ogg"], long_text) <= 0.25
        assert wer(EXPECTED["hello.ogg"], hello_text) <= 0.25

        bot.process.send_signal(signal.SIGTERM)  # the one requested stop: exit 0
        assert await asyncio.wait_for(bot.process.wait(), 30) == 0
    finally:
        await bot.stop()


async def test_connect_to_an_unreachable_telegram_is_one_clear_error(fakegram):
    from voicebot import telegram
    from voicebot.errors import Unreachable

    user = fakegram.create_user("Owner", username="owner")
    client = fakegram.client_for(user, connection_retries=0)  # Telethon's own retries: none here
    await fakegram.go_offline()
    with pytest.raises(Unreachable, match="Telegram is unreachable"):
        await telegram.connect(client)  # at start: one line and exit 1, not a traceback


async def test_a_session_logged_out_while_running_ends_stay_connected_with_not_logged_in(fakegram):
    """Reconnecting cannot cure a revoked session: stay_connected raises (run exits 2, never 0)."""
    from voicebot import telegram
    from voicebot.errors import NotLoggedIn

    user = fakegram.create_user("Owner", username="owner")
    client = fakegram.client_for(user, catch_up=True)
    await telegram.connect(client)
    staying = asyncio.create_task(telegram.stay_connected(client, first_delay=0.05))
    await fakegram.wait_online(user)
    fakegram.terminate_sessions(user)
    fakegram.drop_connections(user)  # Telethon reconnects, then finds itself logged out
    with pytest.raises(NotLoggedIn):
        await asyncio.wait_for(staying, 60)
