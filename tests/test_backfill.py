"""Backfill in memory: the journal decides what was handled; pinned chats do not end it."""

import time

from voicebot.errors import RateLimited
from voicebot.messages import ChatKind, Dialog, MediaKind
from voicebot.state import WATCHING_SINCE

from .helpers import backfill_of, dispatch
from .test_delivery import build, run, voice

NOW = time.time()


def dialog(chat_id, kind=ChatKind.PRIVATE, *, pinned=False, age=0.0):
    return Dialog(chat_id, kind, None, pinned=pinned, last_date=NOW - age)


async def started(tmp_path, **env):
    """A pipeline that has handled one voice before (so this is not the very first start),
    watching since ten minutes ago, as the first start would have marked it."""
    pipeline, chat = build(tmp_path, **env)
    pipeline.state.marks.keep(WATCHING_SINCE, NOW - 600)
    await run(pipeline, voice(90))
    again, _ = build(tmp_path, chat=chat, **env)
    again.start()
    return again, chat


async def test_an_older_voice_is_answered_even_when_a_newer_one_was_seen(tmp_path):
    """The old high-water mark skipped every id below the highest seen: a voice that arrived
    during startup, before one seen live, was lost."""
    pipeline, chat = await started(tmp_path)
    chat.dialog_list = [dialog(42)]
    await dispatch(pipeline).on_message(chat.add(voice(2)))  # seen live
    chat.add(voice(1))  # arrived earlier, never seen
    await pipeline.drain()
    assert await backfill_of(pipeline) == 1
    await pipeline.drain()
    await pipeline.stop()
    assert chat.texts_for(1) == ["Hello there."] and chat.texts_for(2) == ["Hello there."]


async def test_an_old_pinned_dialog_does_not_end_the_catch_up(tmp_path):
    pipeline, chat = await started(tmp_path, TRANSCRIBE_GROUPS="1")
    chat.dialog_list = [
        dialog(-100500, ChatKind.GROUP, pinned=True, age=30 * 86400),  # quiet, pinned first
        dialog(43, age=60),
        dialog(44, age=3 * 86400),
    ]
    chat.add(voice(1, chat_id=43))
    chat.add(voice(2, chat_id=44, date=NOW - 3 * 86400))  # outside BACKFILL_HOURS
    assert await backfill_of(pipeline) == 1
    await pipeline.drain()
    await pipeline.stop()
    assert chat.texts_for(1) == ["Hello there."] and chat.texts_for(2) == []


async def test_chats_whose_kind_is_off_are_not_read(tmp_path):
    pipeline, chat = await started(tmp_path)  # groups and channels are off by default
    chat.dialog_list = [dialog(-100500, ChatKind.GROUP), dialog(-100600, ChatKind.CHANNEL), dialog(43)]
    chat.add(voice(1, chat_id=-100500, chat_kind=ChatKind.GROUP))
    chat.add(voice(2, chat_id=43))
    calls_before = chat.calls.get("recordings", 0)
    assert await backfill_of(pipeline) == 1
    assert chat.calls["recordings"] - calls_before == 1  # only the private chat was read
    await pipeline.drain()
    await pipeline.stop()


async def test_a_flood_wait_pauses_the_catch_up_instead_of_ending_it(tmp_path):
    pipeline, chat = await started(tmp_path)
    chat.dialog_list = [dialog(43), dialog(44)]
    chat.add(voice(1, chat_id=43))
    chat.add(voice(2, chat_id=44))
    original = chat.recordings
    waits = []

    async def throttled(chat_id, since, kinds, limit):
        if not waits:
            waits.append(chat_id)
            raise RateLimited(0.2, "FLOOD_WAIT_X")
        return await original(chat_id, since, kinds, limit)

    chat.recordings = throttled
    started_at = time.monotonic()
    assert await backfill_of(pipeline) == 2
    assert time.monotonic() - started_at >= 0.2 and waits == [43]  # it waited, then went on
    await pipeline.drain()
    await pipeline.stop()


async def test_first_start_ever_answers_nothing_old(tmp_path):
    pipeline, chat = build(tmp_path)
    chat.dialog_list = [dialog(42)]
    chat.add(voice(1, date=time.time() - 3600))  # there before the bot ever ran
    pipeline.start()
    assert await backfill_of(pipeline) == 0
    await pipeline.stop()


async def test_the_first_start_finds_what_came_since_the_watch_began(tmp_path):
    """Backfill used to skip the first start altogether (an empty journal): a voice pushed to a
    first start that was killed before journaling it, or sent between `login` and the first
    `run` in a supergroup (Telethon has no pts to catch it up from), was lost for good."""
    pipeline, chat = build(tmp_path)
    pipeline.state.marks.keep(WATCHING_SINCE, NOW - 600)  # `login`, ten minutes ago
    chat.dialog_list = [dialog(42)]
    chat.add(voice(1, date=NOW - 300))  # after the login
    chat.add(voice(2, date=NOW - 3600))  # before it: not ours
    pipeline.start()
    assert await backfill_of(pipeline) == 1
    await pipeline.drain()
    await pipeline.stop()
    assert chat.texts_for(1) == ["Hello there."] and chat.texts_for(2) == []


async def test_after_an_outage_backfill_looks_over_the_outage_only(tmp_path):
    pipeline, chat = await started(tmp_path)
    chat.dialog_list = [dialog(42)]
    chat.add(voice(1, date=NOW - 60))  # during the outage
    chat.add(voice(2, date=NOW - 500))  # long before it: the start's backfill's to find
    assert await backfill_of(pipeline, since=NOW - 120) == 1
    await pipeline.drain()
    await pipeline.stop()
    assert chat.texts_for(1) == ["Hello there."] and chat.texts_for(2) == []


async def test_only_recordings_of_the_kinds_switched_on_are_asked_for(tmp_path):
    pipeline, chat = await started(tmp_path, TRANSCRIBE_VIDEO_NOTES="0")
    chat.dialog_list = [dialog(42)]
    asked = []
    original = chat.recordings

    async def recordings(chat_id, since, kinds, limit):
        asked.append(kinds)
        return await original(chat_id, since, kinds, limit)

    chat.recordings = recordings
    await backfill_of(pipeline)
    await pipeline.stop()
    assert asked and MediaKind.VOICE in asked[0] and MediaKind.VIDEO_NOTE not in asked[0]


async def test_a_refused_voice_is_not_refused_again(tmp_path):
    pipeline, chat = await started(tmp_path, MAX_FILE_MB="0.001")
    chat.dialog_list = [dialog(42)]
    big = voice(1)
    await dispatch(pipeline).on_message(chat.add(big))
    await pipeline.drain()
    assert len(chat.texts_for(1)) == 1 and chat.texts_for(1)[0].startswith("⚠️")
    assert await backfill_of(pipeline) == 0
    await pipeline.drain()
    await pipeline.stop()
    assert len(chat.texts_for(1)) == 1
