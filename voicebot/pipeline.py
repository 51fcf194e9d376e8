"""The core's orchestration: intake → journal → worker (download, decode, transcribe) → delivery.

No Telethon here: Telegram is reached only through :class:`~voicebot.chat.Chat`. Every job
is journaled before any work or message (:mod:`.journal`), where its answer goes and what
each Telegram error means is :mod:`.delivery`'s business, and a job that must wait (a
flood limit, an outage) is deferred in the journal and comes back by itself. So a crash, a
restart or a refusing chat never loses a voice, never answers one twice, and never leaves
a job stuck.

Example::

    pipeline = Pipeline(settings, engine, chat, TempDir(settings.temp_dir), state, owner_id=me.id)
    pipeline.start()
    await pipeline.resume()               # jobs a crash left unfinished
    await pipeline.on_message(incoming)   # never raises; replies or logs
    await pipeline.drain()
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger

from . import audio
from .chat import Chat, Sent
from .commands import Commands, parse_command
from .config import Settings
from .delivery import Answer, Deferred, Delivery, GaveUp
from .errors import (AudioError, DownloadError, Interrupted, Kind, RateLimited, StorageError, TelegramError,
                     TooLongError, TranscriptionError)
from .formatting import escape, say
from .jobs import JobQueue
from .journal import FAILED
from .media import Action, ChatKind, IncomingMessage, MediaKind, decide
from .state import State, StateError
from .storage import TempDir
from .transcriber import Segment, Transcriber, Transcription

_SUFFIX = {MediaKind.VOICE: ".ogg", MediaKind.VIDEO_NOTE: ".mp4", MediaKind.AUDIO: ".audio",
           MediaKind.VIDEO: ".video"}
MAX_RETRIES = 10  # deferrals for outages before a job is given up (flood waits have their own end)
RETRY_BACKOFF_S = (5, 30, 120, 600, 1800, 3600)


@dataclass
class Job:
    answer: Answer
    queued_at: float = field(default_factory=time.monotonic)
    notice: str | None = None  # deliver these words instead of transcribing (a refusal)
    failure: str | None = None  # with a notice: why the job ends as failed once it is delivered
    opening: asyncio.Task | None = None  # the placeholder on its way, while the work starts
    retries: int = 0

    @property
    def msg(self) -> IncomingMessage:
        return self.answer.msg

    @property
    def job_id(self) -> int | None:
        return self.answer.job_id


@dataclass
class Stats:
    """Totals since start, for logs and the status command."""

    jobs_done: int = 0
    jobs_failed: int = 0
    cache_hits: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    started_at: float = field(default_factory=time.time)

    @property
    def average_rtf(self) -> float | None:
        """Processing time ÷ audio time: 0.1 means ten times faster than real time."""
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else None


def read_audio(path: Path, max_duration_s: float) -> np.ndarray:
    """Probe, enforce the duration cap, and decode: what every transcription starts with.

    Raises :class:`AudioError` or :class:`TooLongError` (its argument: the duration).

    Example::

        samples = read_audio(Path("tests/fixtures/hello.ogg"), max_duration_s=3600)
    """
    info = audio.probe(path)
    if info.duration and info.duration > max_duration_s:
        raise TooLongError(info.duration)
    return audio.decode(path)


class Pipeline:
    """Turns incoming messages into transcripts, one job per voice, through a bounded queue."""

    def __init__(self, settings: Settings, transcriber: Transcriber, chat: Chat, temp: TempDir,
                 state: State, *, owner_id: int | None = None, workers: int = 1):
        self.settings = settings
        self.transcriber = transcriber
        self.chat = chat
        self.temp = temp
        self.state = state
        self.owner_id = owner_id
        self.stats = Stats()
        self.queue: JobQueue[Job] = JobQueue(self._run, workers=workers, maxsize=settings.queue_size)
        self.delivery = Delivery(settings, chat, state.journal, self.say, owner_id)
        self.commands = Commands(self)
        self.progress_interval = settings.progress_interval_s
        self._stopping = threading.Event()  # seen by the worker threads between segments
        self._timers: set[asyncio.Task] = set()

    def start(self) -> None:
        """Start the workers; call inside the running event loop."""
        self.queue.start()

    async def drain(self) -> None:
        """Wait until every accepted job is delivered (deferred ones wait in the journal)."""
        await self.queue.join()

    async def stop(self) -> None:
        """Stop the workers. A transcription in progress ends at its next segment and stays
        journaled as unfinished, so the next start resumes it."""
        self._stopping.set()
        for timer in list(self._timers):
            timer.cancel()
        await self.queue.stop()

    def say(self, key: str, **values: object) -> str:
        return say(key, self.settings.ui_language, prefix=self.settings.command_prefix, **values)

    # -- intake ------------------------------------------------------------------------

    async def on_message(self, msg: IncomingMessage) -> None:
        """Handle one incoming message. Never raises: every failure becomes a reply or a log line."""
        try:
            command = parse_command(msg.text, self.settings.command_prefix) if msg.text else None
            if command and self.is_owner(msg):
                await self.commands.run(command, msg)
            elif msg.media is not None:
                await self.accept(msg)
        except Exception:
            logger.exception("could not handle message {} in chat {}", msg.message_id, msg.chat_id)

    def is_owner(self, msg: IncomingMessage) -> bool:
        """Sent from the owner's account: by its user id, or ``out`` (also when posting
        anonymously or as a channel, where the sender is the chat). In a group anyone
        else could type ".t"."""
        return msg.outgoing or (self.owner_id is not None and msg.sender_id == self.owner_id)

    async def accept(self, msg: IncomingMessage, *, forced: bool = False, placeholder: Sent | None = None) -> bool:
        """Queue ``msg`` for transcription if the settings (or ``forced``, the owner's ``.t``)
        say so. ``placeholder`` is the owner's ``.t`` message, to edit into the answer.
        Returns whether an answer is on its way."""
        decision = decide(msg, self.settings, chat_auto=self.state.chats.get(msg.chat_id).auto, forced=forced)
        if decision.action is Action.IGNORE:
            logger.debug("ignored message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            return False
        target = self.delivery.target_for(msg, forced=forced)
        refused = decision.action is Action.REFUSE
        notice = self.say(decision.reason, **decision.values) if refused else None
        payload = {"peer": msg.peer, "target": target,
                   **({"notice": notice, "failure": decision.reason} if refused else {})}
        record = self.state.journal.record(msg.chat_id, msg.message_id, msg.media.document_id, payload)
        if record is None and not forced:
            logger.debug("message {} in chat {} is already journaled", msg.message_id, msg.chat_id)
            return False
        answer = Answer(msg, record.id if record else None, target, private=msg.media.view_once)
        if placeholder is not None:
            if target == "reply":
                self.delivery.adopt_placeholder(answer, placeholder)  # the .t itself becomes the answer
            else:
                await self._quietly(self.chat.delete(placeholder))  # nothing of it in a shared chat
        job = Job(answer, notice=notice, failure=decision.reason if refused else None)
        if notice is not None:
            logger.info("refused message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            await self._complete(job, notice, notice=True)
            return False
        cached = self._cached(job)
        if cached is not None:
            self.stats.cache_hits += 1
            logger.info("cache hit for message {} in chat {}", msg.message_id, msg.chat_id)
            await self._complete(job, cached)
            return True
        if self.queue.waiting >= self.settings.queue_size:
            logger.warning("queue full ({}); refused message {} in chat {}",
                           self.queue.waiting, msg.message_id, msg.chat_id)
            job.notice, job.failure = self.say("queue_full"), "queue full"
            await self._complete(job, job.notice, notice=True)
            return False
        # The placeholder travels while the job downloads: its round trip is not on the critical path.
        ahead = self.queue.waiting + self.queue.running if self.queue.busy else None
        text = self.say("placeholder") if ahead is None else self.say("queued", position=ahead)
        job.opening = asyncio.create_task(self.delivery.open(answer, text))
        self.queue.submit(job)  # cannot fail: the room was checked above, with no await since
        return True

    async def resume(self) -> int:
        """Requeue the jobs a crash or restart left unfinished; returns how many.

        Nothing is sent from here: a job's messages are the worker's and delivery's
        business, where every Telegram error has its answer. A poison job (started too
        often) gets its placeholder edited into the reason."""
        resumed = 0
        for record in self.state.journal.unfinished():
            try:
                resumed += await self._resume_one(record)
            except Exception:
                logger.exception("could not resume job {}", record.id)
        if resumed:
            logger.info("resumed {} unfinished job(s)", resumed)
        return resumed

    async def _resume_one(self, record) -> int:
        sent = {slot: Sent(chat_id, message_id) for slot, (chat_id, message_id) in record.sent.items()}
        target = record.payload.get("target", "reply")
        stub = IncomingMessage(chat_id=record.chat_id, message_id=record.message_id,
                               chat_kind=ChatKind.PRIVATE, sender_id=None, outgoing=False,
                               peer=record.payload.get("peer", ""))
        if record.state == FAILED:  # poison
            answer = Answer(stub, record.id, target, sent=sent, created_at=record.created_at)
            await self.delivery.give_up(answer, self.say("gave_up", attempts=record.attempts))
            return 0
        try:
            msg = await self.chat.fetch(record.chat_id, record.message_id, stub.peer)
        except TelegramError as exc:
            if exc.kind in (Kind.WAIT, Kind.RETRY):
                self._later(record.id, None, exc.seconds or 30)
                return 0
            msg = None
        if msg is None or msg.media is None:
            self.state.journal.fail(record.id, "message is gone")
            answer = Answer(stub, record.id, target, sent=sent, created_at=record.created_at)
            await self.delivery.give_up(answer, self.say("gone"))
            return 0
        answer = Answer(msg, record.id, target, sent=sent, created_at=record.created_at, adopt=True,
                        private=msg.media.view_once)
        job = Job(answer, notice=record.payload.get("notice"), failure=record.payload.get("failure"),
                  retries=record.retries)
        wait = record.not_before - time.time()
        if wait > 0:
            self._later(record.id, job, wait)
        elif not self.queue.submit(job):
            self._later(record.id, job, RETRY_BACKOFF_S[0])
        return 1

    # -- work --------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        if job.job_id:
            try:
                self.state.journal.start(job.job_id)
            except StateError:  # finished meanwhile (delivered from the cache, say): nothing to do
                return
        try:
            await self._work(job)
        except Interrupted:
            logger.info("job chat={} msg={} interrupted by shutdown; it resumes on the next start",
                        job.msg.chat_id, job.msg.message_id)
        except Exception as exc:  # the last net: a bug must not leave the job running forever
            logger.opt(exception=exc).error("job chat={} msg={} failed unexpectedly",
                                            job.msg.chat_id, job.msg.message_id)
            await self._give_up(job, str(exc), self.say("failed"))

    async def _work(self, job: Job) -> None:
        msg = job.msg
        if job.notice is not None:
            await self._complete(job, job.notice, notice=True)
            return
        cached = self._cached(job)
        if cached is not None:
            await self._complete(job, cached)
            return
        if not job.answer.sent.get("1") and job.opening is None and job.answer.target != "caption":
            job.opening = asyncio.create_task(self.delivery.open(job.answer, self.say("placeholder")))
        elif time.monotonic() - job.queued_at > 1.0:  # it said "queued": now it is being worked on
            await self._landed(job)
            if "1" in job.answer.sent:
                await self.delivery.open(job.answer, self.say("placeholder"))
        started = time.monotonic()
        try:
            result = await self._transcribe(job)
        except (Interrupted, StateError):
            raise
        except TelegramError as exc:  # the download: a flood limit or an outage waits, the rest fails
            if exc.kind in (Kind.WAIT, Kind.RETRY):
                await self._defer(job, exc.seconds or self._backoff(job), f"download: {exc}")
            else:
                await self._fail(job, DownloadError(str(exc)))
            return
        except Exception as exc:
            await self._fail(job, exc)
            return
        took = time.monotonic() - started
        self.stats.jobs_done += 1
        self.stats.audio_seconds += result.duration
        self.stats.busy_seconds += took
        logger.info("job chat={} msg={} audio={:.1f}s took={:.2f}s rtf={:.2f} lang={} p={:.2f}{}",
                    msg.chat_id, msg.message_id, result.duration, took,
                    took / result.duration if result.duration else 0.0,
                    result.language, result.language_probability, " no-speech" if result.no_speech else "")
        if not job.answer.private:  # view-once: its text is never stored, not even in the log
            logger.debug("transcript of {}/{}: {}", msg.chat_id, msg.message_id, result.text)
            segments = [(s.start, s.end, s.text) for s in result.segments]
            if msg.media and msg.media.document_id and not result.no_speech:
                self.state.cache.remember(msg.media.document_id, result.text, result.language,
                                          result.duration, segments)
            if not result.no_speech:
                self.state.search.add(msg.chat_id, msg.message_id, result.text, msg.date or time.time())
        if result.no_speech:
            if self.settings.on_no_speech == "silent":
                await self._landed(job)
                placeholder = job.answer.sent.get("1")
                if placeholder is not None and placeholder.message_id != msg.message_id:
                    await self._quietly(self.chat.delete(placeholder))
                self._journal_done(job)
                return
            await self._complete(job, self.say("no_speech"), notice=True)
            return
        await self._complete(job, result.text)

    def _cached(self, job: Job) -> str | None:
        media = job.msg.media
        if job.answer.private or media is None or not media.document_id:
            return None
        cached = self.state.cache.get(media.document_id)
        return cached.text if cached is not None and cached.text else None

    async def _transcribe(self, job: Job) -> Transcription:
        msg = job.msg
        assert msg.media is not None
        with self.temp.file(_SUFFIX[msg.media.kind]) as path:
            try:
                await self.chat.download(msg, path)
            except OSError as exc:  # full or read-only disk
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
            samples = await self.queue.run_blocking(read_audio, path, self.settings.max_duration_s)
        # The file is gone before the slow part: a crash in the engine leaves nothing behind.
        prefer = self.state.chats.get(msg.chat_id).language
        logger.debug("transcribing {:.1f}s of audio for chat={} msg={}", len(samples) / audio.SAMPLE_RATE,
                     msg.chat_id, msg.message_id)
        progress = _Progress(len(samples) / audio.SAMPLE_RATE, self._stopping)
        ticker = None
        if self.progress_interval and progress.duration > self.progress_interval and job.answer.target != "caption":
            ticker = asyncio.create_task(self._show_progress(job, progress))
        try:
            return await self.queue.run_blocking(
                self.transcriber.transcribe, samples, self.settings.whisper_language,
                prefer=prefer, on_segment=progress.add)
        finally:
            if ticker:
                ticker.cancel()

    async def _show_progress(self, job: Job, progress: "_Progress") -> None:
        """Edit the placeholder with the text so far, no more often than the interval.

        A flood limit on a progress edit is never waited out: the edit is skipped and the
        interval widens, so the final transcript is not delayed by cosmetic edits.
        """
        shown = 0
        await self._landed(job)
        while "1" in job.answer.sent:
            await asyncio.sleep(self.progress_interval)
            if progress.count == shown:
                continue
            shown = progress.count
            text = self.say("progress", percent=progress.percent)
            if not job.answer.private:
                text += "\n" + escape(progress.text)
            try:
                await self.delivery.progress(job.answer, text)
            except RateLimited as exc:
                self.progress_interval = max(self.progress_interval * 2, exc.seconds)
                logger.info("flood limit on progress edits: {}s; interval now {}s", exc.seconds,
                            self.progress_interval)
            except Exception as exc:
                logger.debug("progress edit failed: {}", exc)

    async def _landed(self, job: Job) -> None:
        """Wait for the placeholder to exist before editing it (or going without one)."""
        if job.opening is not None:
            try:
                # Shielded: the progress ticker waits here too, and cancelling the ticker
                # must not cancel the placeholder itself.
                await asyncio.shield(job.opening)
            except Exception as exc:  # no placeholder: the answer is simply sent when ready
                logger.opt(exception=exc).warning("placeholder for message {} failed", job.msg.message_id)
            if job.opening is not None and job.opening.done():
                job.opening = None

    # -- the end of a job --------------------------------------------------------------

    async def _complete(self, job: Job, text: str, *, notice: bool = False) -> None:
        """Deliver and close the job in the journal: done, deferred, or given up."""
        await self._landed(job)
        try:
            await self.delivery.deliver(job.answer, text, notice=notice)
        except Deferred as exc:
            await self._defer(job, exc.seconds, exc.reason)
            return
        except GaveUp as exc:
            await self._give_up(job, str(exc), self.say("undeliverable", reason=str(exc)))
            return
        self._journal_done(job)

    def _journal_done(self, job: Job) -> None:
        if not job.job_id:
            return
        if job.failure is not None:  # answered, but with why it could not be transcribed
            self.state.journal.fail(job.job_id, job.failure[:200])
        else:
            self.state.journal.done(job.job_id)

    async def _fail(self, job: Job, exc: Exception) -> None:
        """The recording itself failed: tell the sender why, and finish the job."""
        self.stats.jobs_failed += 1
        if isinstance(exc, TooLongError):
            text = self.say("too_long", minutes=exc.args[0] / 60,
                            limit_minutes=self.settings.max_duration_s / 60)
        elif isinstance(exc, AudioError):
            text = self.say("unreadable", reason=str(exc))
        elif isinstance(exc, DownloadError):
            text = self.say("download_failed")
        elif isinstance(exc, StorageError):
            text = self.say("disk")
        else:
            text = self.say("failed")
        if isinstance(exc, (TooLongError, AudioError, DownloadError, StorageError, TranscriptionError)):
            logger.warning("job chat={} msg={} failed: {}", job.msg.chat_id, job.msg.message_id, exc)
        else:
            logger.opt(exception=exc).error("job chat={} msg={} failed unexpectedly",
                                            job.msg.chat_id, job.msg.message_id)
        job.notice, job.failure = text, str(exc) or type(exc).__name__
        if job.job_id:
            record = self.state.journal.get(job.job_id)
            if record is not None:  # a retry after a restart says the same, without redoing the work
                self.state.journal.set_payload(job.job_id, {**record.payload, "notice": text,
                                                            "failure": job.failure})
        await self._complete(job, text, notice=True)

    async def _give_up(self, job: Job, reason: str, html: str) -> None:
        logger.warning("gave up on message {} in chat {}: {}", job.msg.message_id, job.msg.chat_id, reason)
        if job.job_id:
            self.state.journal.fail(job.job_id, reason[:200])
        await self.delivery.give_up(job.answer, html)

    async def _defer(self, job: Job, seconds: float, reason: str) -> None:
        """Come back to ``job`` in ``seconds``; the journal keeps it across a restart."""
        job.retries += 1
        if job.retries > MAX_RETRIES:
            await self._give_up(job, f"{reason}; {MAX_RETRIES} retries", self.say("failed"))
            return
        logger.info("message {} in chat {} waits {:.0f}s: {}", job.msg.message_id, job.msg.chat_id, seconds, reason)
        if job.job_id:
            self.state.journal.defer(job.job_id, time.time() + seconds)
        self._later(job.job_id, job, seconds)

    def _backoff(self, job: Job) -> float:
        return RETRY_BACKOFF_S[min(job.retries, len(RETRY_BACKOFF_S) - 1)]

    def _later(self, job_id: int | None, job: Job | None, seconds: float) -> None:
        """Submit ``job`` (or, with None, resume ``job_id`` from the journal) after ``seconds``."""

        async def wake() -> None:
            await asyncio.sleep(seconds)
            if job is None:
                record = self.state.journal.get(job_id) if job_id else None
                if record is not None and record.state in ("pending", "running"):
                    await self._resume_one(record)
            elif not self.queue.submit(job):
                self._later(job_id, job, RETRY_BACKOFF_S[0])

        timer = asyncio.create_task(wake())
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _quietly(self, call) -> None:
        try:
            await call
        except TelegramError as exc:
            logger.info("{}", exc)


class _Progress:
    """Segments recognised so far; written by the worker thread, read by the event loop."""

    def __init__(self, duration: float, stopping: threading.Event):
        self.duration = duration
        self._stopping = stopping
        self._segments: list[Segment] = []

    def add(self, segment: Segment) -> None:
        if self._stopping.is_set():
            raise Interrupted("shutting down")  # ends the engine's loop in the worker thread
        self._segments.append(segment)  # atomic under the GIL; the loop only reads

    @property
    def count(self) -> int:
        return len(self._segments)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self._segments)

    @property
    def percent(self) -> int:
        if not self._segments or not self.duration:
            return 0
        return min(99, int(100 * self._segments[-1].end / self.duration))
