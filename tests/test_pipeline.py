import asyncio
import threading

import pytest

from voicebot.config import load_settings
from voicebot.core.pipeline import Pipeline
from voicebot.engine import Segment, StreamInfo, Transcriber
from voicebot.formatting import MESSAGE_LIMIT, say, utf16_len
from voicebot.messages import ChatKind, Dialog, IncomingMessage, Media, MediaKind
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import EXPECTED, FIXTURES, OWNER_ID, MemoryChat, backfill_of, dispatch, wer


def settings(tmp_path, **env):
    return load_settings(
        {"API_ID": "1", "API_HASH": "0" * 32, "TEMP_DIR": str(tmp_path / "temp"), **env}, dotenv_path=None
    )


def incoming(message_id, kind=MediaKind.VOICE, size=20_000, duration=4.0, chat_kind=ChatKind.PRIVATE):
    return IncomingMessage(
        chat_id=42,
        message_id=message_id,
        chat_kind=chat_kind,
        sender_id=42,
        outgoing=False,
        media=Media(kind, size=size, duration=duration) if kind else None,
    )


async def run(pipeline, *messages):
    pipeline.start()
    for msg in messages:
        await dispatch(pipeline).on_message(msg)
    await pipeline.drain()
    await pipeline.stop()


def make(tmp_path, engine, files, **env):
    chat = MemoryChat({i: FIXTURES / name for i, name in files.items()})
    s = settings(tmp_path, **env)
    temp = TempDir(s.temp_dir)
    temp.prepare()
    state = State(tmp_path / "state.db")
    return Pipeline(s, engine, chat, temp, state, owner_id=OWNER_ID), chat, s


async def test_voice_gets_placeholder_then_transcript(tmp_path, engine):
    pipeline, chat, s = make(tmp_path, engine, {1: "hello.ogg", 2: "video_note.mp4"})
    await run(pipeline, incoming(1), incoming(2, MediaKind.VIDEO_NOTE))
    (hello,) = chat.texts_for(1)
    (video,) = chat.texts_for(2)
    assert wer(EXPECTED["hello.ogg"], hello) <= 0.25
    assert wer(EXPECTED["video_note.mp4"], video) <= 0.25
    placeholder_id = chat.replies[0][0]
    assert chat.versions[placeholder_id] == [say("placeholder"), hello]  # one message, edited once
    assert list(s.temp_dir.iterdir()) == []
    assert pipeline.stats.jobs_done == 2 and pipeline.stats.average_rtf > 0


async def test_placeholder_is_sent_before_transcription_finishes(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "weather.ogg"})
    pipeline.start()
    await dispatch(pipeline).on_message(incoming(1))
    for _ in range(100):
        if chat.texts_for(1):
            break
        await asyncio.sleep(0.01)
    assert chat.texts_for(1) == [say("placeholder")]  # at once, while the job runs
    assert pipeline.stats.jobs_done == 0
    await pipeline.drain()
    await pipeline.stop()
    assert "sunny" in chat.texts_for(1)[0].lower()


@pytest.mark.parametrize("on_no_speech", ["reply", "silent"])
async def test_silence(tmp_path, engine, on_no_speech):
    pipeline, chat, s = make(tmp_path, engine, {1: "silence.ogg"}, ON_NO_SPEECH=on_no_speech)
    await run(pipeline, incoming(1))
    if on_no_speech == "reply":
        assert chat.texts_for(1) == [say("no_speech")]
    else:
        assert chat.texts_for(1) == [] and len(chat.deleted) == 1
    assert list(s.temp_dir.iterdir()) == []


@pytest.mark.parametrize("name", ["empty.ogg", "truncated.ogg", "random.ogg", "text.ogg", "no_audio.mp4"])
async def test_bad_file_gets_a_clear_reply_and_the_next_one_works(tmp_path, engine, name):
    pipeline, chat, s = make(tmp_path, engine, {1: name, 2: "hello.ogg"})
    await run(pipeline, incoming(1), incoming(2))
    (bad,) = chat.texts_for(1)
    assert bad.startswith("⚠️") and ("could not read" in bad or "no speech" in bad), bad
    assert "hello" in chat.texts_for(2)[0].lower()
    assert list(s.temp_dir.iterdir()) == []
    assert pipeline.stats.jobs_done == 1


async def test_failed_download_is_reported_and_next_works(tmp_path, engine):
    pipeline, chat, s = make(tmp_path, engine, {1: "hello.ogg", 2: "hello.ogg"})
    chat.fail_downloads = 1
    await run(pipeline, incoming(1), incoming(2))
    assert chat.texts_for(1) == [say("download_failed")]
    assert "hello" in chat.texts_for(2)[0].lower()
    assert list(s.temp_dir.iterdir()) == []


async def test_refusals_happen_before_download(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {}, MAX_FILE_MB="1", MAX_DURATION_SECONDS="60")
    await run(pipeline, incoming(1, size=5 * 2**20), incoming(2, duration=600))
    assert "limit is 1 MB" in chat.texts_for(1)[0]
    assert "limit is 1 min" in chat.texts_for(2)[0]


async def test_real_duration_is_checked_after_download(tmp_path, engine):
    """A sender's client may claim any duration; the probe measures the file itself."""
    pipeline, chat, s = make(tmp_path, engine, {1: "long.ogg"}, MAX_DURATION_SECONDS="30")
    await run(pipeline, incoming(1, duration=5))
    assert chat.texts_for(1) == [say("too_long", minutes=53.1 / 60, limit_minutes=0.5)]
    assert list(s.temp_dir.iterdir()) == []


async def test_ignored_messages_get_no_reply(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {})
    await run(pipeline, incoming(1, kind=None), incoming(2, MediaKind.AUDIO), incoming(3, chat_kind=ChatKind.GROUP))
    assert chat.replies == []


class ScriptedEngine(Transcriber):
    """An engine that returns a fixed long text, and can block to hold the queue."""

    def __init__(self, text="", gate: threading.Event | None = None):
        self.text, self.gate = text, gate

    def stream(self, samples, language=None):
        if self.gate:
            self.gate.wait(10)
        info = StreamInfo("en", 0.99, len(samples) / 16000)
        return info, iter([Segment(0.0, info.duration, self.text)])


async def test_long_transcript_is_split_without_loss(tmp_path):
    text = " ".join(f"Sentence number {i} is here & it <matters>." for i in range(500))
    pipeline, chat, _ = make(tmp_path, ScriptedEngine(text), {1: "hello.ogg"})
    await run(pipeline, incoming(1))
    parts = chat.texts_for(1)
    assert len(parts) >= 5
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert parts[0].startswith(f"(1/{len(parts)}) ")
    joined = " ".join(p.split(" ", 1)[1] for p in parts)
    assert joined.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == text


async def test_full_queue_says_so(tmp_path):
    gate = threading.Event()
    pipeline, chat, _ = make(
        tmp_path, ScriptedEngine("hi", gate), dict.fromkeys(range(1, 5), "hello.ogg"), QUEUE_SIZE="1"
    )
    pipeline.start()
    await dispatch(pipeline).on_message(incoming(1))
    await asyncio.sleep(0.5)  # job 1 is running (blocked in the engine)
    await dispatch(pipeline).on_message(incoming(2))  # waits in the queue
    await dispatch(pipeline).on_message(incoming(3))  # no room
    await asyncio.sleep(0.1)  # the placeholders are on their way
    assert chat.texts_for(2) == [say("queued", position=1)]
    assert chat.texts_for(3) == [say("queue_full")]
    gate.set()
    await pipeline.drain()
    await pipeline.stop()
    assert chat.texts_for(1) == ["hi"] and chat.texts_for(2) == ["hi"]


async def test_deleted_placeholder_does_not_lose_the_transcript(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg"})
    pipeline.start()
    await dispatch(pipeline).on_message(incoming(1))
    chat.messages.clear()  # someone deleted the placeholder
    await pipeline.drain()
    await pipeline.stop()
    assert "hello" in chat.texts_for(1)[0].lower()


# --- durable state, delivery modes, long voices ------------------------------------------------


def voice(message_id, doc=None, outgoing=False, chat_kind=ChatKind.PRIVATE, date=None):
    import time as _time

    return IncomingMessage(
        chat_id=42,
        message_id=message_id,
        chat_kind=chat_kind,
        sender_id=OWNER_ID if outgoing else 42,
        outgoing=outgoing,
        sender_name="Alice",
        date=date or _time.time(),
        media=Media(MediaKind.VOICE, size=20_000, duration=5, document_id=doc or 900 + message_id),
    )


async def test_forwarded_voice_is_answered_from_the_cache(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg"})
    await run(pipeline, voice(1, doc=555))
    downloads_before = pipeline.stats.jobs_done
    pipeline2 = Pipeline(pipeline.settings, engine, chat, pipeline.temp, pipeline.state, owner_id=OWNER_ID)
    await run(pipeline2, voice(2, doc=555))  # same document, forwarded: no file for it in the chat
    assert chat.texts_for(2) == chat.texts_for(1) and "hello" in chat.texts_for(2)[0].lower()
    assert pipeline2.stats.cache_hits == 1 and pipeline2.stats.jobs_done == 0 and downloads_before == 1


async def test_same_message_twice_is_transcribed_once(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg"})
    await run(pipeline, voice(1), voice(1))
    assert len(chat.texts_for(1)) == 1 and pipeline.stats.jobs_done == 1


async def test_unfinished_job_resumes_once_after_restart(tmp_path, engine):
    """A crash between journaling and delivery: the next start finishes the job, once."""
    pipeline, chat, s = make(tmp_path, engine, {1: "hello.ogg"})
    msg = chat.add(voice(1))
    record = pipeline.state.journal.record(42, 1, msg.media.document_id, {"target": "reply"})
    placeholder = await chat.send(None, say("placeholder"), reply_to=msg)
    pipeline.state.journal.sent(record.id, "1", placeholder.chat_id, placeholder.message_id)
    pipeline.state.journal.start(record.id)  # ... and here the process died
    pipeline.state.close()

    state = State(tmp_path / "state.db")
    restarted = Pipeline(s, engine, chat, pipeline.temp, state, owner_id=OWNER_ID)
    restarted.start()
    assert await restarted.resume() == 1
    await restarted.drain()
    assert await restarted.resume() == 0  # done: never again
    await restarted.stop()
    assert chat.texts_for(1) == [chat.messages[placeholder.message_id]]
    assert "hello" in chat.messages[placeholder.message_id].lower()
    assert state.journal.get(record.id).state == "done"


async def test_backfill_answers_voices_missed_while_down(tmp_path, engine):
    import time as _time

    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg", 2: "weather.ogg", 3: "hello.ogg"})
    chat.dialog_list = [Dialog(42, ChatKind.PRIVATE, None, pinned=False, last_date=_time.time())]
    assert await backfill_of(pipeline) == 0  # first start ever: nothing to catch up on
    await run(pipeline, voice(1))
    chat.add(voice(1))
    chat.add(voice(2))  # arrived while the bot was down
    chat.add(voice(3, date=_time.time() - 3 * 86400))  # too old to answer now
    again = Pipeline(pipeline.settings, engine, chat, pipeline.temp, pipeline.state, owner_id=OWNER_ID)
    again.start()
    assert await backfill_of(again) == 1
    await again.drain()
    await again.stop()
    assert "sunny" in chat.texts_for(2)[0].lower()
    assert len(chat.texts_for(1)) == 1 and chat.texts_for(3) == []


async def test_private_mode_sends_to_saved_messages_with_a_link(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg"}, DELIVER_TO="saved")
    await run(pipeline, voice(1))
    assert chat.replies == []  # the sender sees nothing
    ((target, message_id),) = chat.sent_to
    text = chat.messages[message_id]
    assert target == "saved"
    assert text.startswith("🎙 Alice") and 'href="https://t.me/c/42/1"' in text and "hello" in text.lower()


async def test_own_voice_gets_the_transcript_as_caption(tmp_path, engine):
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg"}, TRANSCRIBE_OUTGOING="1")
    await run(pipeline, chat.add(voice(1, outgoing=True)))
    assert chat.replies == []
    assert "hello" in chat.messages[1].lower()  # the voice message itself was edited


async def test_own_long_voice_caption_too_long_replies_instead(tmp_path):
    text = "word " * 400  # 2000 characters: over the 1024 caption limit
    pipeline, chat, _ = make(tmp_path, ScriptedEngine(text), {1: "hello.ogg"}, TRANSCRIBE_OUTGOING="1")
    await run(pipeline, chat.add(voice(1, outgoing=True)))
    assert 1 not in chat.messages and chat.texts_for(1)[0].startswith("word")


async def test_long_transcript_is_attached_as_txt(tmp_path):
    text = "This is a long sentence. " * 200
    pipeline, chat, _ = make(tmp_path, ScriptedEngine(text), {1: "hello.ogg"}, ATTACH_TXT_ABOVE="1000")
    await run(pipeline, voice(1))
    ((target, reply_to, name, data),) = chat.documents
    assert (target, reply_to, name) == (None, 1, "transcript.txt") and data.decode() == text.strip()


class SlowEngine(Transcriber):
    """Yields real segments slowly, like a long voice on a slow CPU."""

    model_name, device = "slow", "cpu"

    def stream(self, samples, language=None):
        import time as _time

        def segments():
            for i in range(6):
                _time.sleep(0.25)
                yield Segment(i, i + 1, f"part{i}")

        return StreamInfo("en", 1.0, 6.0), segments()


async def test_live_progress_edits_and_flood_widening(tmp_path):
    pipeline, chat, _ = make(tmp_path, SlowEngine(), {1: "long.ogg"})
    pipeline.ticker.interval = 0.3
    await run(pipeline, voice(1))
    assert chat.progress_edits, "no progress was shown"
    assert all("%" in text for _, text in chat.progress_edits)
    assert "part0" in chat.progress_edits[0][1]
    assert chat.texts_for(1) == [" ".join(f"part{i}" for i in range(6))]

    flooded, chat2, _ = make(tmp_path / "2", SlowEngine(), {1: "long.ogg"})
    flooded.ticker.interval = 0.3
    chat2.flood_on_progress = 7
    await run(flooded, voice(1))
    assert flooded.ticker.interval == 7  # widened to what Telegram asked for
    assert chat2.texts_for(1) == [" ".join(f"part{i}" for i in range(6))]  # final text still delivered


class GatedEngine(Transcriber):
    """Says its first words, then goes on only once the placeholder shows them (or gives up)."""

    model_name, device = "gated", "cpu"

    def __init__(self):
        self.shown = threading.Event()
        self.shown_before_the_rest = None

    def stream(self, samples, language=None):
        def segments():
            yield Segment(0, 5, "first words")
            self.shown_before_the_rest = self.shown.wait(timeout=20)
            yield Segment(5, 50, "the rest")

        return StreamInfo("en", 1.0, 53.0), segments()


class WatchingChat(MemoryChat):
    def __init__(self, files, engine):
        super().__init__(files)
        self.engine = engine

    async def edit(self, sent, html, *, progress=False):
        await super().edit(sent, html, progress=progress)
        if progress and "first words" in html:
            self.engine.shown.set()


async def test_first_words_are_shown_as_soon_as_they_exist_not_after_an_interval(tmp_path):
    """The interval paces later edits; the first one goes out with the first segment."""
    engine = GatedEngine()
    s = settings(tmp_path, PROGRESS_INTERVAL_SECONDS="60")
    chat = WatchingChat({1: FIXTURES / "long.ogg"}, engine)
    temp = TempDir(s.temp_dir)
    temp.prepare()
    pipeline = Pipeline(s, engine, chat, temp, State(tmp_path / "state.db"), owner_id=OWNER_ID)
    await run(pipeline, incoming(1))
    assert engine.shown_before_the_rest is True
    assert [text.split("\n", 1)[1] for _, text in chat.progress_edits] == ["first words"]  # paced: one
    assert chat.texts_for(1) == ["first words the rest"]


async def test_a_voice_of_one_window_gets_no_progress_edit(tmp_path):
    """Under 30 s every word comes at once, with the transcript: a progress edit would only
    cost a request (and a flood-limit slot)."""
    pipeline, chat, _ = make(tmp_path, SlowEngine(), {1: "weather.ogg"})
    pipeline.ticker.interval = 0.3
    await run(pipeline, voice(1))
    assert chat.progress_edits == []
    assert chat.texts_for(1) == [" ".join(f"part{i}" for i in range(6))]


class LanguageEngine(Transcriber):
    """Detects Russian with low confidence; records which language it was asked for."""

    model_name, device = "lang", "cpu"

    def __init__(self):
        self.asked = []

    def stream(self, samples, language=None):
        self.asked.append(language)
        info = StreamInfo(language or "ru", 1.0 if language else 0.55, 1.0)
        return info, iter([Segment(0, 1, f"text in {info.language}")])


async def test_pinned_language_beats_an_unsure_confusable_guess(tmp_path):
    engine = LanguageEngine()
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg", 2: "hello.ogg"})
    await run(pipeline, voice(1))
    assert chat.texts_for(1) == ["text in ru"] and engine.asked == [None]
    pipeline.state.chats.set_language(42, "uk")
    again = Pipeline(pipeline.settings, engine, chat, pipeline.temp, pipeline.state, owner_id=OWNER_ID)
    await run(again, voice(2))
    assert chat.texts_for(2) == ["text in uk"] and engine.asked == [None, None, "uk"]


class SlowReplyChat(MemoryChat):
    """A chat whose replies hit a 3 s wait (a flood limit): longer than the transcription."""

    async def send(self, where, html, *, reply_to=None):
        await asyncio.sleep(3.0)
        return await super().send(where, html, reply_to=reply_to)


async def test_slow_placeholder_survives_the_progress_ticker(tmp_path):
    """The ticker waits for the placeholder; stopping the ticker must not cancel the placeholder."""
    s = settings(tmp_path)
    chat = SlowReplyChat({1: FIXTURES / "long.ogg"})
    temp = TempDir(s.temp_dir)
    temp.prepare()
    pipeline = Pipeline(s, SlowEngine(), chat, temp, State(tmp_path / "state.db"), owner_id=OWNER_ID)
    pipeline.ticker.interval = 0.2
    await run(pipeline, incoming(1))
    assert chat.texts_for(1) == [" ".join(f"part{i}" for i in range(6))]
    assert len(chat.replies) == 1  # the placeholder, edited: no second message
