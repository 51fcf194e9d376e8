"""Wire-level: real Telethon clients and the real bot, over MTProto on 127.0.0.1 (tests/fakegram)."""

import asyncio
import subprocess

import pytest
from telethon.tl.types import DocumentAttributeAudio

from voicebot.formatting import MESSAGE_LIMIT, say, utf16_len

from .botharness import Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire
WAVEFORM = bytes([0, 8, 16, 31, 16, 8, 0] * 9)


async def send_voice(client, to, name, **kwargs):
    return await client.send_file(
        to,
        FIXTURES / name,
        voice_note=True,
        attributes=[DocumentAttributeAudio(duration=5, voice=True, waveform=WAVEFORM)],
        **kwargs,
    )


def long_paragraphs(tmp_path, times):
    """``times`` copies of the 53 s paragraph in one voice (stream-copied: seconds to make)."""
    path = tmp_path / f"long{times}.ogg"
    parts = "|".join([str(FIXTURES / "long.ogg")] * times)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", f"concat:{parts}", "-c", "copy", str(path)], check=True)
    return path


@pytest.fixture
async def alice(fakegram, running_bot):
    client = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(client, running_bot.id)
    await client.get_dialogs()  # warm the entity cache, as a real client has
    return client, inbox


async def test_voice_placeholder_then_transcript(running_bot, alice):
    client, inbox = alice
    sent = await send_voice(client, running_bot.username, "hello.ogg")
    await inbox.wait(lambda: transcribed(inbox, sent.id))
    (text,) = inbox.replies_to(sent.id)
    assert wer(EXPECTED["hello.ogg"], text) <= 0.25
    (reply_id,) = [i for i, to in inbox.reply_to.items() if to == sent.id]
    assert inbox.first[reply_id] == say("placeholder")  # it arrived as the placeholder...
    assert inbox.edits[-1] == (reply_id, text)  # ...and was edited into the transcript
    assert list(running_bot.temp_dir.iterdir()) == []


async def test_video_note(running_bot, alice):
    client, inbox = alice
    sent = await client.send_file(running_bot.username, FIXTURES / "video_note.mp4", video_note=True)
    await inbox.wait(lambda: transcribed(inbox, sent.id))
    assert wer(EXPECTED["video_note.mp4"], inbox.replies_to(sent.id)[0]) <= 0.25


async def test_text_is_ignored_and_corrupt_voice_gets_a_clear_reply(running_bot, alice):
    client, inbox = alice
    text = await client.send_message(running_bot.username, "just text")
    bad = await send_voice(client, running_bot.username, "random.ogg")
    good = await send_voice(client, running_bot.username, "weather.ogg")
    await inbox.wait(lambda: transcribed(inbox, bad.id) and transcribed(inbox, good.id))
    assert inbox.replies_to(text.id) == []
    assert inbox.replies_to(bad.id)[0].startswith("⚠️")
    assert wer(EXPECTED["weather.ogg"], inbox.replies_to(good.id)[0]) <= 0.25
    assert list(running_bot.temp_dir.iterdir()) == []


async def test_long_transcript_is_split(running_bot, alice, tmp_path):
    """Eight times the 53 s paragraph: about 4 700 characters, more than one message holds."""
    client, inbox = alice
    long_voice = long_paragraphs(tmp_path, 8)
    sent = await client.send_file(running_bot.username, long_voice, voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, sent.id) and len(inbox.replies_to(sent.id)) >= 2, timeout=300)
    texts = inbox.replies_to(sent.id)
    assert texts[0].startswith(f"(1/{len(texts)}) ")
    assert all(utf16_len(t) <= MESSAGE_LIMIT for t in texts)
    joined = " ".join(t.split(" ", 1)[1] for t in texts)
    assert wer(" ".join([EXPECTED["long.ogg"]] * 8), joined) <= 0.25
    assert list(running_bot.temp_dir.iterdir()) == []


async def test_owner_commands_over_the_wire(running_bot, alice):
    client, inbox = alice
    owner = await running_bot.owner()
    alice_id = (await client.get_me()).id
    await owner.get_input_entity("alice")  # the owner's phone knows the chat
    saved = Inbox(owner, running_bot.id)  # the owner's Saved Messages
    await owner.send_message(alice_id, ".status")
    # .status shows activity from every chat: it answers in Saved Messages, and the command
    # vanishes from Alice's chat (she saw it for a moment: Telegram delivers before we delete).
    await saved.wait(lambda: any("📊" in t for t in saved.texts.values()))
    (text,) = [t for t in saved.texts.values() if "📊" in t]
    assert "model:" in text and "queue: 0 waiting" in text
    (seen_by_alice,) = [i for i, t in inbox.first.items() if t == ".status"]
    await inbox.wait(lambda: seen_by_alice in inbox.deleted)

    # Message ids are per account (the owner's Saved Messages count too): each side uses its own.
    await owner.send_message(alice_id, ".auto off")
    muted = await send_voice(client, running_bot.username, "hello.ogg")
    await owner.send_message(alice_id, ".help")  # answered in place: it reveals nothing
    await inbox.wait(lambda: any("commands" in t for t in inbox.texts.values()))
    assert inbox.replies_to(muted.id) == []  # auto off: ignored

    (owners_copy,) = [m for m in await owner.get_messages(alice_id, limit=5) if m.voice]
    await owner.send_message(alice_id, ".t", reply_to=owners_copy.id)  # ... but on demand it works
    await inbox.wait(lambda: any("hello" in t.lower() for i, t in inbox.texts.items() if inbox.first[i] == ".t"))
    await client.send_message(running_bot.username, ".auto on")  # not the owner: ignored
    await asyncio.sleep(1)
    assert running_bot.bot.state.chats.get(alice_id).auto is False


async def test_forwarded_voice_is_a_cache_hit(running_bot, alice, fakegram):
    client, inbox = alice
    first = await send_voice(client, running_bot.username, "hello.ogg")
    await inbox.wait(lambda: transcribed(inbox, first.id))
    bob = await fakegram.new_user("Bob", username="bob")
    bob_inbox = Inbox(bob, running_bot.id)
    await bob.get_dialogs()
    again = await bob.send_file(running_bot.username, first.media.document)  # the same document
    await bob_inbox.wait(lambda: transcribed(bob_inbox, again.id))
    assert bob_inbox.replies_to(again.id) == inbox.replies_to(first.id)
    assert running_bot.bot.pipeline.stats.cache_hits == 1


async def test_restart_resumes_the_job_exactly_once(running_bot, alice, fakegram):
    client, inbox = alice
    fakegram.slow_get_file(3.0)  # the download is in flight when the bot dies
    sent = await send_voice(client, running_bot.username, "weather.ogg")
    await inbox.wait(lambda: inbox.replies_to(sent.id))
    await running_bot.crash()
    fakegram.slow_get_file(0)
    await running_bot.start()
    await inbox.wait(lambda: transcribed(inbox, sent.id))
    await asyncio.sleep(1.5)  # any duplicate would arrive now
    (text,) = inbox.replies_to(sent.id)
    assert "sunny" in text.lower()
    assert running_bot.bot.state.journal.find((await client.get_me()).id, sent.id).state == "done"


async def test_backfill_answers_a_voice_sent_while_the_bot_was_down(running_bot, alice, fakegram):
    client, inbox = alice
    first = await send_voice(client, running_bot.username, "hello.ogg")
    await inbox.wait(lambda: transcribed(inbox, first.id))
    await running_bot.stop()
    missed = await send_voice(client, running_bot.username, "weather.ogg")  # nobody is listening
    await asyncio.sleep(0.5)
    assert inbox.replies_to(missed.id) == []
    await running_bot.start()
    await inbox.wait(lambda: transcribed(inbox, missed.id))
    await asyncio.sleep(1)
    assert "sunny" in inbox.replies_to(missed.id)[0].lower()
    assert len(inbox.replies_to(first.id)) == 1 and len(inbox.replies_to(missed.id)) == 1
    assert fakegram.calls["SearchRequest"] >= 1  # found by backfill (messages.search), not by a live update


@pytest.mark.bot_settings(DELIVER_TO="saved")
async def test_private_mode_delivers_to_saved_messages(running_bot, alice):
    client, inbox = alice
    owner = await running_bot.owner()
    saved = Inbox(owner, running_bot.id)  # the owner's Saved Messages is the chat with themself
    sent = await send_voice(client, running_bot.username, "hello.ogg")
    await saved.wait(lambda: any("hello" in t.lower() for t in saved.texts.values()))
    (text,) = [t for t in saved.texts.values() if "hello" in t.lower()]
    assert text.startswith("🎙 Alice")
    await asyncio.sleep(1)
    assert inbox.replies_to(sent.id) == []  # Alice saw nothing


@pytest.mark.bot_settings(TRANSCRIBE_OUTGOING="true")
async def test_own_voice_gets_its_transcript_as_caption(running_bot, alice, fakegram):
    client, inbox = alice
    owner = await running_bot.owner()
    await owner.get_input_entity("alice")
    mine = await owner.send_file("alice", FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: "hello" in inbox.texts.get(mine.id, "").lower())
    assert inbox.replies_to(mine.id) == []  # no reply: the voice itself carries the text


async def test_long_voice_shows_its_first_words_before_the_transcript(running_bot, alice, tmp_path):
    """Three minutes of speech: the placeholder shows words while the rest is still being
    transcribed (the sender sees them first), then becomes the whole transcript."""
    client, inbox = alice
    long_voice = long_paragraphs(tmp_path, 3)
    sent = await client.send_file(running_bot.username, long_voice, voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=300)
    (reply_id,) = [i for i, to in inbox.reply_to.items() if to == sent.id]
    texts = [text for message_id, text in inbox.edits if message_id == reply_id]
    final = inbox.texts[reply_id]
    assert texts[-1] == final and not final.startswith("🎙")
    progress = [t for t in texts[:-1] if t.startswith("🎙") and "\n" in t]  # "🎙 N%…" + the words so far
    assert progress, f"no words were shown before the transcript: {texts}"
    first_words = progress[0].split("\n", 1)[1]
    assert wer(EXPECTED["long.ogg"][: len(first_words)], first_words) <= 0.25  # the voice's beginning...
    assert len(first_words) < len(final) / 2  # ...shown early, long before the end
    assert wer(" ".join([EXPECTED["long.ogg"]] * 3), final) <= 0.25
