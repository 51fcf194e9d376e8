"""The core's orchestration: intake → journal → worker (download, decode, transcribe) → delivery.

No Telethon here: Telegram is reached only through :class:`~voicebot.core.ports.Chat`. Every
job is journaled before any work or message (:mod:`voicebot.state.journal`), where its answer
goes and what each Telegram error means is :mod:`voicebot.core.delivery`'s business, and a job that must wait (a
flood limit, an outage) is deferred in the journal and comes back by itself. So a crash, a
restart or a refusing chat never loses a voice, never answers one twice, and never leaves
a job stuck.

Example::

    pipeline = Pipeline(settings, engine, chat, TempDir(settings.temp_dir), state, owner_id=me.id)
    pipeline.start()
    await pipeline.resume()               # jobs a crash left unfinished
    await pipeline.accept(incoming)       # journaled and queued, if the settings say so
    await pipeline.drain()

Routing (commands, reactions, media) is :mod:`voicebot.core.dispatch`'s; the pipeline
implements the ports the controls use (``Admission``, ``StatusView``, recovery's ``JobSink``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

from loguru import logger

from voicebot import metrics
from voicebot.audio import open_recording
from voicebot.config import Settings
from voicebot.core.delivery import CAPTION, REPLY, Answer, Deferred, Delivery, GaveUp
from voicebot.core.extras import Extras
from voicebot.core.health import RunningJob
from voicebot.core.jobs.job import Job, Stats
from voicebot.core.jobs.queue import JobQueue
from voicebot.core.jobs.recovery import Recovery
from voicebot.core.ports import Chat, Status, Writer
from voicebot.core.progress import Progress, Ticker
from voicebot.core.selection import Action, decide
from voicebot.core.vocabulary import vocabulary_for
from voicebot.engine.base import Transcriber, Transcription
from voicebot.errors import (
    AudioError,
    DownloadError,
    Interrupted,
    Kind,
    StorageError,
    TelegramError,
    TooLongError,
    TranscriptionError,
)
from voicebot.formatting import escape, say
from voicebot.messages import IncomingMessage, MediaKind, Sent
from voicebot.state import State, StateError
from voicebot.storage import TempDir

_SUFFIX = {MediaKind.VOICE: ".ogg", MediaKind.VIDEO_NOTE: ".mp4", MediaKind.AUDIO: ".audio", MediaKind.VIDEO: ".video"}


class Pipeline:
    """Turns incoming messages into transcripts, one job per voice, through a bounded queue."""

    def __init__(
        self,
        settings: Settings,
        transcriber: Transcriber,
        chat: Chat,
        temp: TempDir,
        state: State,
        *,
        owner_id: int | None = None,
        workers: int = 1,
        writer: Writer | None = None,
    ):
        self.settings = settings
        self.transcriber = transcriber
        self.chat = chat
        self.temp = temp
        self.state = state
        self.owner_id = owner_id
        self.stats = Stats()
        self.queue: JobQueue[Job] = JobQueue(self._run, workers=workers, maxsize=settings.queue_size)
        self.delivery = Delivery(settings, chat, state.journal, self.say, owner_id)
        blocking = self.queue.run_blocking
        self.extras = Extras(
            settings, writer, self.delivery, chat, state, self.say, engine=transcriber, temp=temp, run_blocking=blocking
        )
        self.ticker = Ticker(settings.progress_interval_s)
        self._stopping = threading.Event()  # seen by the worker threads between segments
        self._running: dict[int, RunningJob] = {}  # id(job) → what the heartbeat's rule reads
        self.recovery = Recovery(self, state.journal, self.delivery, chat, self.say)  # self: its JobSink

    def start(self) -> None:
        """Start the workers; call inside the running event loop."""
        self.queue.start()
        metrics.watch_queue(self.queue)

    async def drain(self) -> None:
        """Wait until every accepted job is delivered (deferred ones wait in the journal)."""
        await self.queue.join()
        await self.extras.drain()

    async def stop(self) -> None:
        """Stop the workers. A transcription in progress ends at its next segment and stays
        journaled as unfinished, so the next start resumes it."""
        self._stopping.set()
        self.recovery.stop()
        await self.queue.stop()
        await self.extras.stop()
        metrics.unwatch_queue(self.queue)

    def say(self, key: str, **values: object) -> str:
        return say(key, self.settings.ui_language, prefix=self.settings.command_prefix, **values)

    # -- intake ------------------------------------------------------------------------

    async def accept(
        self, msg: IncomingMessage, *, forced: bool = False, placeholder: Sent | None = None, again: bool = False
    ) -> bool:
        """Queue ``msg`` for transcription if the settings (or ``forced``: the owner's ``.t`` or
        reaction) say so. ``placeholder`` is the owner's ``.t`` message, to edit into the answer;
        ``again`` answers a message the journal already has (``.t``, never a reaction).
        Returns whether an answer is on its way."""
        decision = decide(msg, self.settings, chat_auto=self.state.chats.get(msg.chat_id).auto, forced=forced)
        if decision.action is Action.IGNORE:
            logger.debug("ignored message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            return False
        target = self.delivery.target_for(msg, forced=forced)
        refused = decision.action is Action.REFUSE
        notice = self.say(decision.reason, **decision.values) if refused else None
        payload = {
            "peer": msg.peer,
            "target": target,
            **({"notice": notice, "failure": decision.reason} if refused else {}),
        }
        record = self.state.journal.record(msg.chat_id, msg.message_id, msg.media.document_id, payload)
        if record is None and not again:
            logger.debug("message {} in chat {} is already journaled", msg.message_id, msg.chat_id)
            return False
        answer = Answer(msg, record.id if record else None, target, private=msg.media.view_once)
        if placeholder is not None:
            if target == REPLY:
                self.delivery.adopt_placeholder(answer, placeholder)  # the .t itself becomes the answer
            else:
                await self._quietly(self.chat.delete(placeholder))  # nothing of it in a shared chat
        job = Job(answer, notice=notice, failure=decision.reason if refused else None)
        if notice is not None:
            logger.info("refused message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            metrics.job("refused")
            await self._complete(job, notice, notice=True)
            return False
        cached = self._cached(job)
        if cached is not None:
            self.stats.cache_hits += 1
            metrics.job("cached")
            logger.info("cache hit for message {} in chat {}", msg.message_id, msg.chat_id)
            await self._complete(job, cached)
            return True
        if self.queue.waiting >= self.settings.queue_size:
            logger.warning(
                "queue full ({}); refused message {} in chat {}", self.queue.waiting, msg.message_id, msg.chat_id
            )
            job.notice, job.failure = self.say("queue_full"), "queue full"
            metrics.job("queue_full")
            await self._complete(job, job.notice, notice=True)
            return False
        # The placeholder travels while the job downloads: its round trip is not on the critical path.
        ahead = self.queue.waiting + self.queue.running if self.queue.busy else None
        text = self.say("placeholder") if ahead is None else self.say("queued", position=ahead)
        job.opening = asyncio.create_task(self.delivery.open(answer, text))
        self.queue.submit(job)  # cannot fail: the room was checked above, with no await since
        return True

    async def resume(self) -> int:
        """Requeue the jobs a crash or restart left unfinished; returns how many."""
        return await self.recovery.resume()

    def reconnected(self) -> None:
        """Telegram is reachable again: the jobs deferred for the outage go now."""
        self.recovery.retry_outages()

    def submit(self, job: Job) -> bool:
        """Queue a job that comes back (recovery's :class:`~voicebot.core.jobs.recovery.JobSink`)."""
        return self.queue.submit(job)

    def running_jobs(self) -> tuple[RunningJob, ...]:
        """The jobs workers are on now, since when and how long their audio is (read-only)."""
        return tuple(self._running.values())

    def status(self) -> Status:
        """A snapshot for ``.status`` (the :class:`~voicebot.core.ports.StatusView` port)."""
        return Status(
            waiting=self.queue.waiting,
            running=self.queue.running,
            done=self.stats.jobs_done,
            failed=self.stats.jobs_failed,
            started_at=self.stats.started_at,
            rtf=self.stats.average_rtf,
            model=self.transcriber.model_name,
            device=self.transcriber.device,
            cached=self.state.counts()["cached"],
            endpoints=tuple(self.transcriber.endpoints()),
        )

    # -- work --------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        if job.job_id:
            try:
                self.state.journal.start(job.job_id)
            except StateError:  # finished meanwhile (delivered from the cache, say): nothing to do
                return
        self._running[id(job)] = RunningJob(job.msg.chat_id, job.msg.message_id, time.monotonic())
        try:
            await self._work(job)
        except Interrupted:
            logger.info(
                "job chat={} msg={} interrupted by shutdown; it resumes on the next start",
                job.msg.chat_id,
                job.msg.message_id,
            )
        except Exception as exc:  # the last net: a bug must not leave the job running forever
            logger.opt(exception=exc).error(
                "job chat={} msg={} failed unexpectedly", job.msg.chat_id, job.msg.message_id
            )
            await self.give_up(job, str(exc), self.say("failed"))
        finally:
            self._running.pop(id(job), None)

    async def _work(self, job: Job) -> None:
        msg = job.msg
        if job.notice is not None:
            await self._complete(job, job.notice, notice=True)
            return
        cached = self._cached(job)
        if cached is not None:
            if not job.retries:  # a deferred job coming back was counted when it was decided
                metrics.job("cached")
            await self._complete(job, cached)
            return
        if not job.answer.sent.get("1") and job.opening is None and job.answer.target != CAPTION:
            job.opening = asyncio.create_task(self.delivery.open(job.answer, self.say("placeholder")))
        elif time.monotonic() - job.queued_at > 1.0:  # it said "queued": now it is being worked on
            await self._landed(job)
            if "1" in job.answer.sent:
                await self.delivery.open(job.answer, self.say("placeholder"))
        started = job.started = time.monotonic()
        try:
            result = await self._transcribe(job)
        except (Interrupted, StateError):
            raise
        except TelegramError as exc:  # the download: a flood limit or an outage waits, the rest fails
            if exc.kind in (Kind.WAIT, Kind.RETRY):
                outage = exc.kind is Kind.RETRY
                await self.recovery.defer(
                    job, exc.seconds or self.recovery.backoff(job), f"download: {exc}", outage=outage
                )
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
        metrics.transcribed(audio_s=result.duration, took_s=took)
        metrics.job("no_speech" if result.no_speech else "done")
        logger.info(
            "job chat={} msg={} audio={:.1f}s took={:.2f}s rtf={:.2f} lang={} p={:.2f}{}",
            msg.chat_id,
            msg.message_id,
            result.duration,
            took,
            took / result.duration if result.duration else 0.0,
            result.language,
            result.language_probability,
            " no-speech" if result.no_speech else "",
        )
        if not job.answer.private:  # view-once: its text is never stored, not even in the log
            logger.debug("transcript of {}/{}: {}", msg.chat_id, msg.message_id, result.text)
            segments = [(s.start, s.end, s.text) for s in result.segments]
            if msg.media and msg.media.document_id and not result.no_speech:
                self.state.cache.remember(
                    msg.media.document_id, result.text, result.language, result.duration, segments
                )
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
        if await self._complete(job, result.text):
            self._words_shown(job)

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
            samples = await self.queue.run_blocking(open_recording, path, max_duration_s=self.settings.max_duration_s)
        # The file is gone before the slow part (the open recording reads on): a crash in the
        # engine leaves nothing behind.
        here = self.state.chats.get(msg.chat_id)
        languages = here.languages or self.settings.whisper_languages
        vocabulary = await vocabulary_for(msg, self.settings, here, self.chat)
        if vocabulary:
            logger.debug("vocabulary for chat={}: {} term(s)", msg.chat_id, len(vocabulary))  # names stay out of logs
        duration = samples.duration
        running = self._running.get(id(job))
        if running is not None and duration:
            self._running[id(job)] = dataclasses.replace(running, audio_s=duration)
        logger.debug("transcribing {:.1f}s of audio for chat={} msg={}", duration or -1, msg.chat_id, msg.message_id)
        progress = Progress(duration or 0.0, self._stopping, asyncio.get_running_loop())
        ticker = None
        if self.ticker.wanted(duration) and job.answer.target != CAPTION:
            ticker = asyncio.create_task(self._show_progress(job, progress))
        try:
            return await self.queue.run_blocking(
                self.transcriber.transcribe,
                samples,
                self.settings.whisper_language,
                prefer=here.language,
                languages=languages,
                vocabulary=vocabulary,
                on_segment=progress.add,
            )
        finally:
            if ticker:
                ticker.cancel()

    async def _show_progress(self, job: Job, progress: Progress) -> None:
        """Edit the placeholder with the words so far (never those of a view-once voice)."""
        await self._landed(job)

        async def show(percent: int, text: str) -> None:
            html = self.say("progress", percent=percent)
            if not job.answer.private:
                html += "\n" + escape(text)
            await self.delivery.progress(job.answer, html)
            if text and not job.answer.private and "1" in job.answer.sent:
                self._words_shown(job)

        if "1" in job.answer.sent:
            await self.ticker.run(progress, show)

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

    async def _complete(self, job: Job, text: str, *, notice: bool = False) -> bool:
        """Deliver and close the job in the journal: done (True), deferred, or given up."""
        await self._landed(job)
        try:
            await self.delivery.deliver(job.answer, text, notice=notice)
        except Deferred as exc:
            await self.recovery.defer(job, exc.seconds, exc.reason, outage=exc.outage)
            return False
        except GaveUp as exc:
            await self.give_up(job, str(exc), self.say("undeliverable", reason=str(exc)))
            return False
        self._journal_done(job)
        if not notice:
            self.extras.follow(job.answer, text)  # the transcript is out; the LLM's part follows
        return True

    def _words_shown(self, job: Job) -> None:
        """The job's first words reached the user: their latency, once per job."""
        if job.started is not None and not job.words_shown:
            job.words_shown = True
            metrics.first_words(time.monotonic() - job.started)

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
        metrics.job("failed")
        if isinstance(exc, TooLongError):
            text = self.say("too_long", minutes=exc.args[0] / 60, limit_minutes=self.settings.max_duration_s / 60)
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
            logger.opt(exception=exc).error(
                "job chat={} msg={} failed unexpectedly", job.msg.chat_id, job.msg.message_id
            )
        job.notice, job.failure = text, str(exc) or type(exc).__name__
        if job.job_id:
            record = self.state.journal.get(job.job_id)
            if record is not None:  # a retry after a restart says the same, without redoing the work
                self.state.journal.set_payload(job.job_id, {**record.payload, "notice": text, "failure": job.failure})
        await self._complete(job, text, notice=True)

    async def give_up(self, job: Job, reason: str, html: str) -> None:
        logger.warning("gave up on message {} in chat {}: {}", job.msg.message_id, job.msg.chat_id, reason)
        metrics.given_up()
        if job.job_id:
            self.state.journal.fail(job.job_id, reason[:200])
        await self.delivery.give_up(job.answer, html)

    async def _quietly(self, call) -> None:
        try:
            await call
        except TelegramError as exc:
            logger.info("{}", exc)
