"""The core: decide → download → decode → transcribe → format → deliver. No Telethon here.

Telegram is reached only through the :class:`Chat` protocol, which
``voicebot.telegram`` implements and tests implement in memory. Every job is written to
the state journal before work starts, so a crash or restart resumes it and each voice
gets exactly one transcript.

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
from typing import Any, Protocol

from loguru import logger

from . import audio
from .commands import Commands, parse_command
from .config import Settings
from .errors import (AudioError, DownloadError, Interrupted, RateLimited, StorageError, TooLongError,
                     TranscriptionError)
from .formatting import escape, say, split_transcript, utf16_len
from .jobs import JobQueue
from .media import Action, IncomingMessage, MediaKind, decide
from .state import State, StateError
from .storage import TempDir
from .transcriber import Segment, Transcriber, Transcription

CAPTION_LIMIT = 1024
# Whisper hears 30 s at a time: a shorter voice's words all come at once, with the transcript.
ONE_WINDOW_S = 30.0
_SUFFIX = {MediaKind.VOICE: ".ogg", MediaKind.VIDEO_NOTE: ".mp4", MediaKind.AUDIO: ".audio",
           MediaKind.VIDEO: ".video"}


@dataclass(frozen=True)
class Sent:
    """A message the bot sent (or the owner's own message it may edit)."""

    chat_id: int
    message_id: int
    ref: Any = None


class Chat(Protocol):
    """What the core needs from Telegram. Texts are HTML (``parse_mode='html'``)."""

    async def reply(self, msg: IncomingMessage, html: str) -> Sent:
        """Reply to ``msg`` in its chat."""

    async def send(self, target: str, html: str) -> Sent:
        """Send to ``target``: ``saved`` (Saved Messages), a chat id or an @username."""

    async def send_file(self, msg: IncomingMessage, target: str | None, name: str, data: bytes) -> Sent:
        """Send a document: as a reply to ``msg``, or to ``target`` when given."""

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        """Replace a message's text (a media message's caption). With ``progress``,
        raise :class:`RateLimited` instead of waiting out a flood limit."""

    async def delete(self, sent: Sent) -> None:
        """Delete a message."""

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        """Save ``msg``'s media to ``dest``; raise :class:`DownloadError` on failure."""

    async def fetch(self, chat_id: int, message_id: int) -> IncomingMessage | None:
        """The message, or ``None`` if it is gone."""

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        """The message ``msg`` replies to, if any."""

    async def recent(self, since: float, per_chat: int) -> list[IncomingMessage]:
        """Messages with media newer than ``since`` (Unix time), at most ``per_chat`` per chat."""

    def link(self, chat_id: int, message_id: int) -> str:
        """A link that opens the message in Telegram."""


@dataclass
class Job:
    msg: IncomingMessage
    placeholder: Sent | None  # None: deliver without one (the owner's own voice → caption)
    queued_at: float
    job_id: int | None = None  # the journal row; None for a repeat ``.t``
    header: str = ""  # private delivery: who sent it, and a link back
    opening: asyncio.Task | None = None  # the placeholder on its way, while the work starts


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


def read_audio(path: Path, max_duration_s: float) -> audio.Recording:
    """Probe, enforce the duration cap, and start decoding: what every transcription starts
    with. The rest is decoded while it is transcribed; the file may be deleted meanwhile.

    Raises :class:`AudioError` or :class:`TooLongError` (its argument: the duration).

    Example::

        recording = read_audio(Path("tests/fixtures/hello.ogg"), max_duration_s=3600)
    """
    return audio.open_recording(path, max_duration_s=max_duration_s)


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
        self.commands = Commands(self)
        self.progress_interval = settings.progress_interval_s
        self._stopping = threading.Event()  # seen by the worker threads between segments

    def start(self) -> None:
        """Start the workers; call inside the running event loop."""
        self.queue.start()

    async def drain(self) -> None:
        """Wait until every accepted job is delivered."""
        await self.queue.join()

    async def stop(self) -> None:
        """Stop the workers. A transcription in progress ends at its next segment and stays
        journaled as unfinished, so the next start resumes it."""
        self._stopping.set()
        await self.queue.stop()

    def say(self, key: str, **values: object) -> str:
        return say(key, self.settings.ui_language, prefix=self.settings.command_prefix, **values)

    # -- intake ------------------------------------------------------------------------

    async def on_message(self, msg: IncomingMessage) -> None:
        """Handle one incoming message. Never raises: every failure becomes a reply or a log line."""
        try:
            command = parse_command(msg.text, self.settings.command_prefix) if msg.text else None
            # The sender id, not the chat, says who may command: in a group anyone could type ".t".
            if command and self.owner_id is not None and msg.sender_id == self.owner_id:
                await self.commands.run(command, msg)
            elif msg.media is not None:
                await self.accept(msg)
        except Exception:
            logger.exception("could not handle message {} in chat {}", msg.message_id, msg.chat_id)

    async def accept(self, msg: IncomingMessage, *, forced: bool = False, placeholder: Sent | None = None) -> bool:
        """Queue ``msg`` for transcription if the settings (or ``forced``, the owner's ``.t``)
        say so. ``placeholder`` is a message to edit into the transcript (the ``.t`` itself).
        Returns whether a transcript is on its way."""
        prefs = self.state.chat_settings(msg.chat_id)
        decision = decide(msg, self.settings, chat_auto=prefs.auto, forced=forced)
        if decision.action is Action.IGNORE:
            logger.debug("ignored message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            return False
        self.state.mark_seen(msg.chat_id, msg.message_id)
        if decision.action is Action.REFUSE:
            logger.info("refused message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            await self._tell(msg, placeholder, self.say(decision.reason, **decision.values))
            return False
        record = self.state.record_job(msg.chat_id, msg.message_id, msg.media.document_id, {})
        if record is None and not forced:
            logger.debug("message {} in chat {} is already journaled", msg.message_id, msg.chat_id)
            return False
        job = Job(msg, placeholder, time.monotonic(), record.id if record else None)
        cached = self.state.cached(msg.media.document_id) if msg.media.document_id else None
        if cached is not None:
            self.stats.cache_hits += 1
            logger.info("cache hit for message {} in chat {}", msg.message_id, msg.chat_id)
            job.header = self._header(msg)  # no placeholder: the answer is already here
            await self._deliver(job, cached.text)
            return True
        if self.queue.waiting >= self.settings.queue_size:
            logger.warning("queue full ({}); refused message {} in chat {}",
                           self.queue.waiting, msg.message_id, msg.chat_id)
            if job.job_id:
                self.state.mark_failed(job.job_id, "queue full")
            await self._tell(msg, placeholder, self.say("queue_full"))
            return False
        # The placeholder travels while the job downloads: its round trip is not on the critical path.
        ahead = self.queue.waiting + self.queue.running if self.queue.busy else None
        job.opening = asyncio.create_task(self._open(job, ahead=ahead))
        self.queue.submit(job)  # cannot fail: the room was checked above, with no await since
        return True

    async def resume(self) -> int:
        """Requeue the jobs a crash or restart left unfinished; returns how many."""
        resumed = 0
        for record in self.state.unfinished_jobs():
            msg = await self.chat.fetch(record.chat_id, record.message_id)
            if msg is None or msg.media is None:
                self.state.mark_failed(record.id, "message is gone")
                continue
            placeholder = Sent(record.chat_id, record.placeholder_id) if record.placeholder_id else None
            job = Job(msg, placeholder, time.monotonic(), record.id, header=self._header(msg))
            if placeholder is None:
                await self._open(job, ahead=self.queue.waiting + self.queue.running)
            if self.queue.submit(job):
                resumed += 1
        if resumed:
            logger.info("resumed {} unfinished job(s)", resumed)
        return resumed

    async def backfill(self) -> int:
        """Transcribe voices that arrived while the bot was down (bounded by age and count)."""
        counts = self.state.counts()
        if not self.settings.backfill_hours or not any(counts[k] for k in ("pending", "running", "done", "failed")):
            return 0  # first start ever: nothing was missed, and old voices are not ours to answer
        since = time.time() - self.settings.backfill_hours * 3600
        queued = 0
        try:
            missed = await self.chat.recent(since, self.settings.backfill_per_chat)
        except Exception as exc:  # catching up is a bonus: never a reason not to start
            logger.warning("backfill skipped: {}", exc)
            return 0
        for msg in missed:
            last = self.state.last_seen(msg.chat_id)
            if last is not None and msg.message_id <= last:
                continue
            queued += await self.accept(msg)
        if queued:
            logger.info("backfill: {} voice(s) that arrived while the bot was down", queued)
        return queued

    async def _tell(self, msg: IncomingMessage, placeholder: Sent | None, html: str) -> None:
        if placeholder is not None:
            await self._safe_edit(placeholder, html)
        elif self.settings.private_delivery:
            await self.chat.send(self.settings.deliver_to, f"{self._header(msg)}\n{html}")
        else:
            await self.chat.reply(msg, html)

    def _header(self, msg: IncomingMessage) -> str:
        if not self.settings.private_delivery:
            return ""
        link = escape(self.chat.link(msg.chat_id, msg.message_id))
        who = self.say("private_header", who=msg.sender_name or str(msg.sender_id))
        return f'{who} <a href="{link}">↗</a>'

    def _caption_mode(self, msg: IncomingMessage) -> bool:
        return msg.outgoing and self.settings.caption_own_voices and not self.settings.private_delivery

    async def _landed(self, job: Job) -> None:
        """Wait for the placeholder to exist before editing it (or going without one)."""
        if job.opening is not None:
            try:
                # Shielded: the progress ticker waits here too, and cancelling the ticker
                # must not cancel the placeholder itself.
                await asyncio.shield(job.opening)
            except Exception as exc:
                logger.warning("could not send the placeholder for message {}: {}", job.msg.message_id, exc)
            if job.opening.done():
                job.opening = None

    async def _open(self, job: Job, *, ahead: int | None) -> None:
        """Show at once that the voice was heard: a placeholder reply (or edit the ``.t``).
        ``ahead``: jobs before this one, when it has to wait."""
        text = self.say("placeholder") if ahead is None else self.say("queued", position=ahead)
        job.header = self._header(job.msg)
        if job.placeholder is not None:
            await self._safe_edit(job.placeholder, text)
        elif self._caption_mode(job.msg):
            return  # the caption is written once, when the transcript is ready
        elif self.settings.private_delivery:
            job.placeholder = await self.chat.send(self.settings.deliver_to, f"{job.header}\n{text}")
        else:
            job.placeholder = await self.chat.reply(job.msg, text)
        if job.job_id and job.placeholder:
            self.state.set_placeholder(job.job_id, job.placeholder.message_id)

    # -- work --------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        msg = job.msg
        if job.job_id:
            try:
                self.state.mark_running(job.job_id)
            except StateError:  # finished meanwhile (delivered from the cache, say): nothing to do
                return
        if time.monotonic() - job.queued_at > 1.0:
            await self._landed(job)
            if job.placeholder:
                await self._safe_edit(job.placeholder, self._with_header(job, self.say("placeholder")))
        started = time.monotonic()
        try:
            result = await self._transcribe(job)
        except Interrupted:
            logger.info("job chat={} msg={} interrupted by shutdown; it resumes on the next start",
                        msg.chat_id, msg.message_id)
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
        logger.debug("transcript of {}/{}: {}", msg.chat_id, msg.message_id, result.text)
        segments = [(s.start, s.end, s.text) for s in result.segments]
        if msg.media and msg.media.document_id and not result.no_speech:
            self.state.remember(msg.media.document_id, result.text, result.language, result.duration, segments)
        if not result.no_speech:
            self.state.index_transcript(msg.chat_id, msg.message_id, result.text, msg.date or time.time())
        await self._deliver(job, result.text)

    async def _transcribe(self, job: Job) -> Transcription:
        msg = job.msg
        assert msg.media is not None
        with self.temp.file(_SUFFIX[msg.media.kind]) as path:
            try:
                await self.chat.download(msg, path)
            except OSError as exc:  # full or read-only disk
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
            samples = await self.queue.run_blocking(read_audio, path, self.settings.max_duration_s)
        # The file is gone before the slow part (the open recording reads on): a crash in the
        # engine leaves nothing behind.
        prefer = self.state.chat_settings(msg.chat_id).language
        duration = samples.duration
        logger.debug("transcribing {:.1f}s of audio for chat={} msg={}", duration or -1, msg.chat_id, msg.message_id)
        progress = _Progress(duration or 0.0, self._stopping, asyncio.get_running_loop())
        ticker = None
        if (job.placeholder or job.opening) and self.progress_interval and (duration or 1e9) > ONE_WINDOW_S:
            ticker = asyncio.create_task(self._show_progress(job, progress))
        try:
            return await self.queue.run_blocking(
                self.transcriber.transcribe, samples, self.settings.whisper_language,
                prefer=prefer, on_segment=progress.add)
        finally:
            if ticker:
                ticker.cancel()

    async def _show_progress(self, job: Job, progress: "_Progress") -> None:
        """Edit the placeholder with the text so far: the first words as soon as they exist,
        then no more often than the interval.

        A flood limit on a progress edit is never waited out: the edit is skipped and the
        interval widens, so the final transcript is not delayed by cosmetic edits.
        """
        shown = 0
        await self._landed(job)
        while job.placeholder:
            await progress.beyond(shown)
            shown = progress.count
            text = self.say("progress", percent=progress.percent) + "\n" + escape(progress.text)
            if utf16_len(text) > 4000:
                text = self.say("progress", percent=progress.percent)
            try:
                await self.chat.edit(job.placeholder, self._with_header(job, text), progress=True)
            except RateLimited as exc:
                self.progress_interval = max(self.progress_interval * 2, exc.seconds)
                logger.info("flood limit on progress edits: {}s; interval now {}s", exc.seconds,
                            self.progress_interval)
            except Exception as exc:
                logger.debug("progress edit failed: {}", exc)
            await asyncio.sleep(self.progress_interval)

    # -- delivery ----------------------------------------------------------------------

    async def _deliver(self, job: Job, text: str) -> None:
        await self._landed(job)
        sent_ids: list[int] = []
        if not text:
            if self.settings.on_no_speech == "silent" and job.placeholder:
                await self.chat.delete(job.placeholder)
            elif self.settings.on_no_speech == "reply":
                await self._send_part(job, self.say("no_speech"), first=True, sent_ids=sent_ids)
        elif self._caption_mode(job.msg) and job.placeholder is None and utf16_len(escape(text)) <= CAPTION_LIMIT:
            await self.chat.edit(Sent(job.msg.chat_id, job.msg.message_id, job.msg.ref), escape(text))
            sent_ids.append(job.msg.message_id)
        else:
            limit = 4096 - utf16_len(job.header) - 1 if job.header else 4096
            for i, part in enumerate(split_transcript(text, limit=limit)):
                await self._send_part(job, part, first=i == 0, sent_ids=sent_ids)
            if self.settings.attach_txt_above and len(text) > self.settings.attach_txt_above:
                target = self.settings.deliver_to if self.settings.private_delivery else None
                sent = await self.chat.send_file(job.msg, target, "transcript.txt", text.encode())
                sent_ids.append(sent.message_id)
        if job.job_id:
            self.state.mark_delivered(job.job_id, sent_ids)

    async def _send_part(self, job: Job, html: str, *, first: bool, sent_ids: list[int]) -> None:
        html = self._with_header(job, html)
        if first and job.placeholder is not None and await self._safe_edit(job.placeholder, html):
            sent_ids.append(job.placeholder.message_id)
            return
        if self.settings.private_delivery:
            sent = await self.chat.send(self.settings.deliver_to, html)
        else:
            sent = await self.chat.reply(job.msg, html)
        sent_ids.append(sent.message_id)

    def _with_header(self, job: Job, html: str) -> str:
        return f"{job.header}\n{html}" if job.header else html

    async def _fail(self, job: Job, exc: Exception) -> None:
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
        if job.job_id:
            self.state.mark_failed(job.job_id, str(exc)[:200])
        await self._landed(job)
        if job.placeholder:
            await self._safe_edit(job.placeholder, self._with_header(job, text))
        else:
            await self._tell(job.msg, None, text)

    async def _safe_edit(self, sent: Sent, html: str) -> bool:
        """Edit, but a vanished placeholder (deleted by someone) must not lose the transcript."""
        try:
            await self.chat.edit(sent, html)
            return True
        except Exception as exc:
            logger.warning("could not edit message {} in chat {}: {}", sent.message_id, sent.chat_id, exc)
            return False


class _Progress:
    """Segments recognised so far; written by the worker thread, read by the event loop."""

    def __init__(self, duration: float, stopping: threading.Event, loop: asyncio.AbstractEventLoop):
        self.duration = duration
        self._stopping = stopping
        self._segments: list[Segment] = []
        self._loop = loop
        self._added = asyncio.Event()

    def add(self, segment: Segment) -> None:
        if self._stopping.is_set():
            raise Interrupted("shutting down")  # ends the engine's loop in the worker thread
        self._segments.append(segment)  # atomic under the GIL; the loop only reads
        try:
            self._loop.call_soon_threadsafe(self._added.set)
        except RuntimeError:  # the loop is closed: nobody is watching
            pass

    async def beyond(self, count: int) -> None:
        """Return once there are more than ``count`` segments."""
        while self.count <= count:
            self._added.clear()
            if self.count > count:
                break
            await self._added.wait()

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
