"""The core: decide → download → decode → transcribe → format → deliver. No Telethon here.

Telegram is reached only through the :class:`Chat` protocol, which
``voicebot.telegram`` implements and tests implement in memory.

Example::

    pipeline = Pipeline(settings, engine, chat, TempDir(settings.temp_dir))
    pipeline.start()
    await pipeline.on_message(incoming)   # never raises; replies or logs
    await pipeline.drain()
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from loguru import logger

from . import audio
from .config import Settings
from .errors import AudioError, DownloadError, TooLongError, TranscriptionError
from .formatting import say, split_transcript
from .jobs import JobQueue
from .media import Action, IncomingMessage, MediaKind, decide
from .storage import TempDir
from .transcriber import Transcriber, Transcription

_SUFFIX = {MediaKind.VOICE: ".ogg", MediaKind.VIDEO_NOTE: ".mp4", MediaKind.AUDIO: ".audio",
           MediaKind.VIDEO: ".video"}


@dataclass(frozen=True)
class Sent:
    """A message the bot sent, as the chat adapter identifies it."""

    chat_id: int
    message_id: int
    ref: Any = None


class Chat(Protocol):
    """What the core needs from Telegram. Texts are HTML (``parse_mode='html'``)."""

    async def reply(self, msg: IncomingMessage, html: str) -> Sent:
        """Reply to ``msg``."""

    async def edit(self, sent: Sent, html: str) -> None:
        """Replace the text of a message the bot sent."""

    async def delete(self, sent: Sent) -> None:
        """Delete a message the bot sent."""

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        """Save ``msg``'s media to ``dest``; raise :class:`DownloadError` on failure."""


@dataclass
class Job:
    msg: IncomingMessage
    placeholder: Sent
    queued_at: float


@dataclass
class Stats:
    """Totals since start, for logs and the status command."""

    jobs_done: int = 0
    jobs_failed: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0

    @property
    def average_rtf(self) -> float | None:
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
                 *, workers: int = 1):
        self.settings = settings
        self.transcriber = transcriber
        self.chat = chat
        self.temp = temp
        self.stats = Stats()
        self.queue: JobQueue[Job] = JobQueue(self._run, workers=workers, maxsize=settings.queue_size)

    def start(self) -> None:
        """Start the workers; call inside the running event loop."""
        self.queue.start()

    async def drain(self) -> None:
        """Wait until every accepted job is delivered."""
        await self.queue.join()

    async def stop(self) -> None:
        await self.queue.stop()

    def _say(self, key: str, **values: object) -> str:
        return say(key, self.settings.ui_language, **values)

    async def on_message(self, msg: IncomingMessage) -> None:
        """Handle one incoming message. Never raises: every failure becomes a reply or a log line."""
        try:
            await self._accept(msg)
        except Exception:
            logger.exception("could not handle message {} in chat {}", msg.message_id, msg.chat_id)

    async def _accept(self, msg: IncomingMessage) -> None:
        decision = decide(msg, self.settings)
        if decision.action is Action.IGNORE:
            logger.debug("ignored message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            return
        if decision.action is Action.REFUSE:
            logger.info("refused message {} in chat {}: {}", msg.message_id, msg.chat_id, decision.reason)
            await self.chat.reply(msg, self._say(decision.reason, **decision.values))
            return
        if self.queue.waiting >= self.settings.queue_size:
            logger.warning("queue full ({}); refused message {} in chat {}",
                           self.queue.waiting, msg.message_id, msg.chat_id)
            await self.chat.reply(msg, self._say("queue_full"))
            return
        ahead = self.queue.waiting + self.queue.running
        text = self._say("queued", position=ahead) if self.queue.busy else self._say("placeholder")
        placeholder = await self.chat.reply(msg, text)
        if not self.queue.submit(Job(msg, placeholder, time.monotonic())):
            await self.chat.edit(placeholder, self._say("queue_full"))

    async def _run(self, job: Job) -> None:
        msg = job.msg
        if time.monotonic() - job.queued_at > 1.0:
            await self._safe_edit(job.placeholder, self._say("placeholder"))
        started = time.monotonic()
        try:
            result = await self._transcribe(msg)
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
        await self._deliver(job, result)

    async def _transcribe(self, msg: IncomingMessage) -> Transcription:
        assert msg.media is not None
        with self.temp.file(_SUFFIX[msg.media.kind]) as path:
            try:
                await self.chat.download(msg, path)
            except OSError as exc:  # full or read-only disk
                raise DownloadError(f"cannot write {path.name}: {exc.strerror or exc}") from exc
            samples = await self.queue.run_blocking(read_audio, path, self.settings.max_duration_s)
        # The file is gone before the slow part: a crash in the engine leaves nothing behind.
        return await self.queue.run_blocking(self.transcriber.transcribe, samples,
                                             self.settings.whisper_language)

    async def _deliver(self, job: Job, result: Transcription) -> None:
        if result.no_speech:
            if self.settings.on_no_speech == "silent":
                await self.chat.delete(job.placeholder)
            else:
                await self._safe_edit(job.placeholder, self._say("no_speech"))
            return
        first, *rest = split_transcript(result.text)
        if not await self._safe_edit(job.placeholder, first):
            await self.chat.reply(job.msg, first)
        for part in rest:
            await self.chat.reply(job.msg, part)

    async def _fail(self, job: Job, exc: Exception) -> None:
        self.stats.jobs_failed += 1
        if isinstance(exc, TooLongError):
            text = self._say("too_long", minutes=exc.args[0] / 60,
                             limit_minutes=self.settings.max_duration_s / 60)
        elif isinstance(exc, AudioError):
            text = self._say("unreadable", reason=str(exc))
        elif isinstance(exc, DownloadError):
            text = self._say("download_failed")
        else:
            text = self._say("failed")
        if isinstance(exc, (TooLongError, AudioError, DownloadError, TranscriptionError)):
            logger.warning("job chat={} msg={} failed: {}", job.msg.chat_id, job.msg.message_id, exc)
        else:
            logger.opt(exception=exc).error("job chat={} msg={} failed unexpectedly",
                                            job.msg.chat_id, job.msg.message_id)
        await self._safe_edit(job.placeholder, text)

    async def _safe_edit(self, sent: Sent, html: str) -> bool:
        """Edit, but a vanished placeholder (deleted by someone) must not lose the transcript."""
        try:
            await self.chat.edit(sent, html)
            return True
        except Exception as exc:
            logger.warning("could not edit message {} in chat {}: {}", sent.message_id, sent.chat_id, exc)
            return False
