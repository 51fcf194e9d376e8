"""Catch-up in supergroups, over a real bot process: what Telethon's difference cannot replay,
backfill finds (voicebot/core/backfill.py)."""

import asyncio
import signal

import pytest

from tests.fakegram.testing import marked

from .botharness import BotProcess, Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire


async def _bot_in_a_supergroup(fakegram, model_path, tmp_path):
    """The owner's bot running, in a supergroup with Alice, having heard one voice there live
    (so Telethon holds the channel's pts): (owner, Alice's client, group, her inbox, bot)."""
    owner = fakegram.create_user("Owner", username="owner")
    alice = await fakegram.new_user("Alice", username="alice")
    group = fakegram.create_supergroup("Club", fakegram.user_of(alice), [owner])
    inbox = Inbox(alice, marked(group))
    bot = BotProcess(fakegram, owner, tmp_path / "bot", model_path, TRANSCRIBE_GROUPS="1")
    await bot.start()
    try:
        await bot.wait_for_log("voicebot is running")
        evening = fakegram.send_message(
            fakegram.user_of(alice), group, voice=(FIXTURES / "weather.ogg").read_bytes(), duration=8
        )
        await inbox.wait(lambda: transcribed(inbox, evening), timeout=120)
    except BaseException:
        await bot.stop()
        raise
    return owner, alice, group, inbox, bot


async def test_a_supergroup_with_more_than_100_events_while_the_bot_was_down(fakegram, model_path, tmp_path):
    """Telethon asks getChannelDifference with limit=100 (_updates/messagebox.py); past that the
    server answers channelDifferenceTooLong, for which Telethon moves the pts on and returns no
    messages. The old backfill read the newest 100 messages of the chat, so a voice under 150
    texts was lost both ways; backfill now searches the recordings themselves."""
    owner, alice, group, inbox, bot = await _bot_in_a_supergroup(fakegram, model_path, tmp_path)
    try:
        bot.process.send_signal(signal.SIGTERM)  # a clean stop saves the update state
        assert await asyncio.wait_for(bot.process.wait(), 30) == 0

        voice = fakegram.send_message(
            fakegram.user_of(alice), group, voice=(FIXTURES / "hello.ogg").read_bytes(), duration=5
        )
        for n in range(150):
            fakegram.send_message(fakegram.user_of(alice), group, f"chatter {n}")

        await bot.start()
        await inbox.wait(lambda: transcribed(inbox, voice), timeout=180)
        await asyncio.sleep(2)  # a duplicate would arrive now
        (text,) = inbox.replies_to(voice)
        assert wer(EXPECTED["hello.ogg"], text) <= 0.25, text
        assert fakegram.calls["GetChannelDifferenceRequest"] >= 1  # Telethon did try, and got TooLong
    finally:
        await bot.stop()


async def test_a_gap_of_more_than_100_events_while_connected_is_backfilled(fakegram, model_path, tmp_path):
    """A dropped connection that Telethon itself repairs in a second: no outage of ours, so no
    backfill from the reconnect. The 150 events missed meanwhile come back as
    channelDifferenceTooLong, which Telethon turns into nothing; the bot hears of it
    (telegram.watch_channel_gaps) and searches that chat."""
    owner, alice, group, inbox, bot = await _bot_in_a_supergroup(fakegram, model_path, tmp_path)
    try:
        assert fakegram.drop_connections(owner) >= 1
        # All sent before the event loop (the fake's too) lets the bot reconnect.
        voice = fakegram.send_message(
            fakegram.user_of(alice), group, voice=(FIXTURES / "hello.ogg").read_bytes(), duration=5
        )
        for n in range(150):
            fakegram.send_message(fakegram.user_of(alice), group, f"chatter {n}")
        await inbox.wait(lambda: transcribed(inbox, voice), timeout=180)
        await asyncio.sleep(2)  # a duplicate would arrive now
        (text,) = inbox.replies_to(voice)
        assert wer(EXPECTED["hello.ogg"], text) <= 0.25, text
        assert "chat -100" in bot.log.read_text() and "too much missed to replay" in bot.log.read_text()
    finally:
        await bot.stop()


async def test_a_private_gap_too_long_to_replay_while_connected_is_backfilled(fakegram, model_path, tmp_path):
    """The account's own difference past the server's limit is updates.differenceTooLong:
    Telethon takes the new pts and returns nothing (_updates/messagebox.py). The bot hears of
    it and searches every chat."""
    owner = fakegram.create_user("Owner", username="owner")
    alice = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(alice, owner.id)
    await alice.get_dialogs()
    bot = BotProcess(fakegram, owner, tmp_path / "bot", model_path)
    await bot.start()
    try:
        await bot.wait_for_log("voicebot is running")
        fakegram.limit_difference(20)
        assert fakegram.drop_connections(owner) >= 1
        voice = fakegram.send_message(
            fakegram.user_of(alice), owner, voice=(FIXTURES / "hello.ogg").read_bytes(), duration=5
        )
        for n in range(30):
            fakegram.send_message(fakegram.user_of(alice), owner, f"chatter {n}")
        await inbox.wait(lambda: transcribed(inbox, voice), timeout=180)
        await asyncio.sleep(2)  # a duplicate would arrive now
        (text,) = inbox.replies_to(voice)
        assert wer(EXPECTED["hello.ogg"], text) <= 0.25, text
        assert "every chat: too much missed to replay" in bot.log.read_text()
    finally:
        await bot.stop()
