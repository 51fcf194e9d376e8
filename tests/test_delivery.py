"""Delivery in memory: where answers go, and what each Telegram refusal turns into.

MemoryChat refuses like Telegram (an edit names its chat; injected errors by Telegram's
names), so these run in milliseconds; tests/test_telegram_fidelity.py proves the same over
the wire against tests/fakegram.
"""

import asyncio
import time

import pytest

from voicebot.config import load_settings
from voicebot.core.pipeline import Pipeline
from voicebot.engine import Segment, StreamInfo, Transcriber
from voicebot.formatting import say
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind, Sent
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import FIXTURES, OWNER_ID, MemoryChat, dispatch

CHAT = 42


class Words(Transcriber):
    """Returns ``text`` for any audio, at once."""

    model_name, device = "words", "cpu"

    def __init__(self, text="Hello there."):
        self.text, self.calls = text, 0

    def stream(self, samples, language=None):
        self.calls += 1
        return StreamInfo("en", 1.0, 1.0), iter([Segment(0.0, 1.0, self.text)])


def voice(
    message_id,
    *,
    chat_id=CHAT,
    kind=MediaKind.VOICE,
    outgoing=False,
    chat_kind=ChatKind.PRIVATE,
    view_once=False,
    forwarded=False,
    date=None,
    text="",
    auto_forward=False,
    doc=None,
):
    return IncomingMessage(
        chat_id=chat_id,
        message_id=message_id,
        chat_kind=chat_kind,
        sender_id=OWNER_ID if outgoing else 7,
        outgoing=outgoing,
        sender_name="Alice",
        date=time.time() if date is None else date,
        text=text,
        forwarded=forwarded,
        auto_forward=auto_forward,
        media=Media(kind, size=20_000, duration=2, document_id=doc or 5000 + message_id, view_once=view_once),
    )


def build(tmp_path, engine=None, db="state.db", chat=None, **env):
    s = load_settings(
        {
            "API_ID": "1",
            "API_HASH": "0" * 32,
            "TEMP_DIR": str(tmp_path / "temp"),
            "PROGRESS_INTERVAL_SECONDS": "0",
            **env,
        },
        dotenv_path=None,
    )
    chat = chat or MemoryChat(dict.fromkeys(range(1, 100), FIXTURES / "hello.ogg"))
    temp = TempDir(s.temp_dir)
    temp.prepare()
    return Pipeline(s, engine or Words(), chat, temp, State(tmp_path / db), owner_id=OWNER_ID), chat


async def run(pipeline, *messages):
    pipeline.start()
    for msg in messages:
        pipeline.chat.add(msg)
        await dispatch(pipeline).on_message(msg)
    await pipeline.drain()
    await pipeline.stop()


def job_of(pipeline, msg):
    return pipeline.state.journal.find(msg.chat_id, msg.message_id)


# -- 1. a chat we cannot write in: the answer goes to Saved Messages, the job ends ------------


@pytest.mark.parametrize(
    "error",
    [
        "CHAT_WRITE_FORBIDDEN",
        "USER_BANNED_IN_CHANNEL",
        "CHAT_SEND_PLAIN_FORBIDDEN",
        "USER_IS_BLOCKED",
        "INPUT_USER_DEACTIVATED",
        "TOPIC_CLOSED",
        "PEER_FLOOD",
    ],
)
async def test_a_chat_that_refuses_us_gets_the_answer_in_saved_messages(tmp_path, error):
    pipeline, chat = build(tmp_path)
    chat.fail("send", error, times=99, where=None)
    msg = voice(1)
    await run(pipeline, msg)
    ((target, message_id),) = [(t, i) for t, i in chat.sent_to if "Hello there." in chat.messages[i]]
    assert target == "saved" and chat.messages[message_id].startswith("🎙 Alice")
    assert chat.replies == []
    record = job_of(pipeline, msg)
    assert record.state == "done" and record.payload["target"] == "saved"
    assert set(record.sent) == {"1"} and record.sent["1"][0] == OWNER_ID  # its chat is recorded


async def test_resume_in_a_forbidden_chat_never_raises_and_finishes_the_job(tmp_path):
    """The crash loop: a job left running in a chat that refuses us used to make resume()
    raise out of Bot.start on every restart."""
    pipeline, chat = build(tmp_path)
    msg = chat.add(voice(1))
    record = pipeline.state.journal.record(CHAT, 1, msg.media.document_id, {"target": "reply"})
    pipeline.state.journal.start(record.id)  # the process died here, before any placeholder
    chat.fail("send", "CHAT_WRITE_FORBIDDEN", times=99, where=None)
    pipeline.start()
    assert await pipeline.resume() == 1  # no exception: nothing is sent from resume()
    await pipeline.drain()
    await pipeline.stop()
    assert pipeline.state.journal.get(record.id).state == "done"
    assert [t for t, _ in chat.sent_to] == ["saved"]


async def test_when_even_saved_messages_refuse_the_job_is_given_up_once(tmp_path):
    pipeline, chat = build(tmp_path)
    chat.fail("send", "CHAT_WRITE_FORBIDDEN", times=99)
    msg = voice(1)
    await run(pipeline, msg)
    record = job_of(pipeline, msg)
    assert record.state == "failed" and "CHAT_WRITE_FORBIDDEN" in record.reason
    assert pipeline.state.journal.unfinished() == []  # never resumed again


# -- 5. the journal knows each message's chat ------------------------------------------------


async def test_private_mode_resume_edits_the_placeholder_in_saved_messages(tmp_path):
    pipeline, chat = build(tmp_path, DELIVER_TO="saved")
    msg = chat.add(voice(1))
    record = pipeline.state.journal.record(CHAT, 1, msg.media.document_id, {"target": "saved"})
    placeholder = await chat.send("saved", say("placeholder"), reply_to=msg)
    pipeline.state.journal.sent(record.id, "1", placeholder.chat_id, placeholder.message_id)
    pipeline.state.journal.start(record.id)  # crash
    pipeline.start()
    await pipeline.resume()
    await pipeline.drain()
    await pipeline.stop()
    assert chat.answers_for(1) == [chat.messages[placeholder.message_id]]  # edited, no second message
    assert "Hello there." in chat.messages[placeholder.message_id]
    assert chat.replies == []


# -- 6. every error on the way out ends in wait, fall back or give up ------------------------


async def test_a_long_slow_mode_wait_defers_the_job_and_it_comes_back(tmp_path):
    pipeline, chat = build(tmp_path)
    chat.fail("edit", "SLOWMODE_WAIT_X", seconds=0.3)  # over the adapter's cap: back to the journal
    msg = voice(1)
    pipeline.start()
    chat.add(msg)
    await dispatch(pipeline).on_message(msg)
    await pipeline.drain()
    record = job_of(pipeline, msg)
    assert record.state == "pending" and record.not_before > 0 and record.retries == 1
    await asyncio.sleep(0.6)  # the timer requeues it
    await pipeline.drain()
    await pipeline.stop()
    assert job_of(pipeline, msg).state == "done"
    assert chat.texts_for(1) == ["Hello there."]  # one message: the placeholder, edited once it could be


async def test_a_deferred_job_survives_a_restart_without_transcribing_again(tmp_path):
    engine = Words()
    pipeline, chat = build(tmp_path, engine)
    chat.fail("edit", "FLOOD_PREMIUM_WAIT_X", seconds=3600)
    msg = voice(1)
    await run(pipeline, msg)
    assert job_of(pipeline, msg).state == "pending" and engine.calls == 1
    pipeline.state.close()
    again, _ = build(tmp_path, engine, chat=chat)  # a restart...
    with again.state.db.tx() as conn:
        conn.execute("UPDATE jobs SET not_before = 0")  # ...an hour later
    again.start()
    assert await again.resume() == 1
    await again.drain()
    await again.stop()
    assert job_of(again, msg).state == "done"
    assert chat.texts_for(1) == ["Hello there."] and engine.calls == 1  # from the cache


async def test_no_right_to_send_files_keeps_the_text(tmp_path):
    text = "A sentence. " * 400
    pipeline, chat = build(tmp_path, Words(text), ATTACH_TXT_ABOVE="100")
    chat.fail("send_file", "CHAT_SEND_DOCS_FORBIDDEN")
    msg = voice(1)
    await run(pipeline, msg)
    assert chat.documents == [] and len(chat.texts_for(1)) == 2
    assert job_of(pipeline, msg).state == "done"


async def test_an_unknown_error_gives_up_and_the_placeholder_says_why(tmp_path):
    pipeline, chat = build(tmp_path)
    chat.fail("edit", "SOMETHING_NEW_AND_STRANGE")
    msg = voice(1)
    await run(pipeline, msg)
    (text,) = chat.texts_for(1)
    assert text.startswith("⚠️") and "SOMETHING_NEW_AND_STRANGE" in text  # never left "transcribing…"
    assert job_of(pipeline, msg).state == "failed"


async def test_outage_is_retried_and_a_message_sent_before_the_crash_is_adopted(tmp_path):
    """Part 2 of 3 reached Telegram but the answer was lost (connection dropped): after the
    retry the bot finds it among its answers instead of sending it again."""
    text = " ".join(f"Sentence {i} is here." for i in range(900))
    pipeline, chat = build(tmp_path, Words(text))

    original = chat.send
    state = {"n": 0}

    async def flaky(where, html, *, reply_to=None):
        sent = await original(where, html, reply_to=reply_to)
        state["n"] += 1
        if state["n"] == 2:  # the first part after the placeholder: done on Telegram, lost here
            from voicebot.errors import Unreachable

            raise Unreachable("send: ConnectionError")
        return sent

    chat.send = flaky
    msg = voice(1)
    pipeline.start()
    chat.add(msg)
    await dispatch(pipeline).on_message(msg)
    await pipeline.drain()
    record = job_of(pipeline, msg)
    assert record.state == "pending"
    with pipeline.state.db.tx() as conn:
        conn.execute("UPDATE jobs SET not_before = 0")
    for timer in list(pipeline.recovery._timers):
        timer.cancel()
    await pipeline.resume()
    await pipeline.drain()
    await pipeline.stop()
    texts = chat.texts_for(1)
    assert [t.split(" ", 1)[0] for t in texts] == [f"({i}/{len(texts)})" for i in range(1, len(texts) + 1)]
    assert job_of(pipeline, msg).state == "done"


async def test_crash_mid_delivery_resends_nothing_already_sent(tmp_path):
    text = " ".join(f"Sentence {i} is here." for i in range(900))
    pipeline, chat = build(tmp_path, Words(text))
    msg = voice(1)
    await run(pipeline, msg)
    parts = chat.texts_for(1)
    assert len(parts) >= 3
    # As if the process died after part 2 was sent but before it was journaled, and the
    # journal still says running: the restart must adopt it, edit nothing twice, send no copy.
    record = job_of(pipeline, msg)
    with pipeline.state.db.tx() as conn:
        conn.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (record.id,))
        conn.execute("DELETE FROM sent WHERE job_id = ? AND slot != '1'", (record.id,))
    pipeline.state.close()
    again, _ = build(tmp_path, Words(text), chat=chat)
    again.start()
    await again.resume()
    await again.drain()
    await again.stop()
    assert chat.texts_for(1) == parts  # the same messages, none added
    assert len(chat.documents) == 1  # transcript.txt too: adopted, not sent again
    assert set(job_of(again, msg).sent) == {str(i) for i in range(1, len(parts) + 1)} | {"txt"}


# -- 3. view-once -----------------------------------------------------------------------------


async def test_view_once_is_never_transcribed_automatically(tmp_path):
    engine = Words()
    pipeline, chat = build(tmp_path, engine)
    await run(pipeline, voice(1, view_once=True))
    assert engine.calls == 0 and chat.replies == [] and chat.sent_to == []
    assert job_of(pipeline, voice(1)) is None


async def test_view_once_on_request_goes_only_to_saved_messages_and_is_never_stored(tmp_path):
    from loguru import logger

    engine = Words("a secret only heard once")
    pipeline, chat = build(tmp_path, engine)
    secret = chat.add(voice(1, view_once=True))
    pipeline.start()
    command = IncomingMessage(
        chat_id=CHAT,
        message_id=2,
        chat_kind=ChatKind.PRIVATE,
        sender_id=OWNER_ID,
        outgoing=True,
        text=".t",
        reply_to=1,
        date=time.time(),
    )
    chat.add(command)
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="TRACE")
    try:
        await dispatch(pipeline).on_message(command)
        await pipeline.drain()
    finally:
        logger.remove(sink)
    await pipeline.stop()
    assert not any("secret" in line for line in logged)  # not even at DEBUG
    ((target, message_id),) = chat.sent_to
    assert target == "saved" and "a secret only heard once" in chat.messages[message_id]
    assert 2 in chat.deleted and chat.replies == []  # nothing of it left in the shared chat
    assert pipeline.state.cache.get(secret.media.document_id) is None
    assert pipeline.state.search.search("secret") == []


# -- 7. captions on the owner's own media ---------------------------------------------------


@pytest.mark.parametrize("case", ["video_note", "forwarded", "old"])
async def test_caption_only_where_telegram_allows_it(tmp_path, case):
    msg = {
        "video_note": voice(1, outgoing=True, kind=MediaKind.VIDEO_NOTE),
        "forwarded": voice(1, outgoing=True, forwarded=True),
        "old": voice(1, outgoing=True, date=time.time() - 49 * 3600),
    }[case]
    pipeline, chat = build(tmp_path, TRANSCRIBE_OUTGOING="1")
    await run(pipeline, msg)
    assert chat.texts_for(1) == ["Hello there."]  # a reply
    assert (1, "Hello there.") not in chat.edits  # the media itself untouched


async def test_old_own_voice_in_saved_messages_still_gets_a_caption(tmp_path):
    pipeline, chat = build(tmp_path, TRANSCRIBE_OUTGOING="1")
    await run(pipeline, voice(1, chat_id=OWNER_ID, outgoing=True, date=time.time() - 30 * 86400))
    assert chat.messages[1] == "Hello there." and chat.replies == []


async def test_the_owners_own_caption_is_kept(tmp_path):
    pipeline, chat = build(tmp_path, TRANSCRIBE_OUTGOING="1")
    await run(pipeline, voice(1, outgoing=True, text="for mum"))
    assert chat.messages[1] == "for mum\n\n🎙 Hello there."


async def test_a_refused_caption_falls_back_to_a_reply(tmp_path):
    pipeline, chat = build(tmp_path, TRANSCRIBE_OUTGOING="1")
    chat.fail("edit", "MESSAGE_EDIT_TIME_EXPIRED")
    msg = voice(1, outgoing=True)
    await run(pipeline, msg)
    assert chat.texts_for(1) == ["Hello there."] and job_of(pipeline, msg).state == "done"


# -- 8. channels ------------------------------------------------------------------------------


async def test_a_broadcast_channel_post_is_answered_privately(tmp_path):
    pipeline, chat = build(tmp_path, TRANSCRIBE_CHANNELS="1")
    await run(pipeline, voice(1, chat_id=-1001234, chat_kind=ChatKind.CHANNEL))
    assert chat.replies == []
    ((target, message_id),) = chat.sent_to
    assert target == "saved" and "Hello there." in chat.messages[message_id]


async def test_the_discussion_group_copy_of_a_channel_post_is_not_answered(tmp_path):
    engine = Words()
    pipeline, chat = build(tmp_path, engine, TRANSCRIBE_GROUPS="1")
    await run(pipeline, voice(1, chat_id=-1005678, chat_kind=ChatKind.GROUP, auto_forward=True))
    assert engine.calls == 0 and chat.replies == [] and chat.sent_to == []


# -- 10. a job given up never leaves "transcribing…" -------------------------------------------


async def test_a_poison_job_gets_its_placeholder_edited_into_the_reason(tmp_path):
    from voicebot.state.journal import MAX_ATTEMPTS

    pipeline, chat = build(tmp_path)
    msg = chat.add(voice(1))
    record = pipeline.state.journal.record(CHAT, 1, msg.media.document_id, {"target": "reply"})
    placeholder = await chat.send(None, say("placeholder"), reply_to=msg)
    pipeline.state.journal.sent(record.id, "1", placeholder.chat_id, placeholder.message_id)
    for _ in range(MAX_ATTEMPTS):
        pipeline.state.journal.start(record.id)  # it crashed the bot each time
    pipeline.start()
    assert await pipeline.resume() == 0
    await pipeline.stop()
    assert chat.messages[placeholder.message_id] == say("gave_up", attempts=MAX_ATTEMPTS)


async def test_a_voice_deleted_while_the_bot_was_down_closes_its_placeholder(tmp_path):
    pipeline, chat = build(tmp_path)
    msg = voice(1)
    record = pipeline.state.journal.record(CHAT, 1, msg.media.document_id, {"target": "reply"})
    placeholder = await chat.send(None, say("placeholder"), reply_to=msg)
    pipeline.state.journal.sent(record.id, "1", placeholder.chat_id, placeholder.message_id)
    pipeline.start()
    await pipeline.resume()  # the voice is not in the chat any more
    await pipeline.stop()
    assert chat.messages[placeholder.message_id] == say("gone")
    assert pipeline.state.journal.get(record.id).state == "failed"


async def test_an_edit_of_the_wrong_chat_is_refused_like_telegram_does(tmp_path):
    _, chat = build(tmp_path)
    sent = await chat.send("saved", "x")
    with pytest.raises(Exception, match="MESSAGE_ID_INVALID"):
        await chat.edit(Sent(CHAT, sent.message_id), "y")
