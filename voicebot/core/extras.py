"""What an LLM adds after a transcript is delivered: a clean-up pass (``LLM_CLEANUP``), a
summary above ``SUMMARY_ABOVE_SECONDS``, and the chat's automatic translation (``.tr auto``).

The transcript never waits for them: it is delivered exactly as without an LLM, and the
extras follow in the background. The answer is then edited into its final layout (the
summary lines first, the transcript in an expandable blockquote below) and the translation
comes as its own message. An LLM that is down, slow or refusing changes nothing the user
sees: the transcript stays as delivered, and one warning in the log says what was skipped.
What the LLM wrote is cached beside the transcript (by document id) and made findable
by ``.find``; the raw transcript stays in the cache whatever the clean-up made of it.

Example::

    extras = Extras(settings, writer, delivery, chat, state, say)
    extras.follow(answer, "Hello, world.")   # after delivery; returns at once
    await extras.drain()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from loguru import logger

from voicebot.audio import open_recording
from voicebot.config import Settings
from voicebot.core.delivery import CAPTION, REPLY, Answer, Delivery
from voicebot.core.ports import Chat, Writer
from voicebot.core.writing import clean_up, quote, summarise, summary_layout, translate
from voicebot.engine.base import Transcriber
from voicebot.errors import TelegramError, TranscriptionError
from voicebot.formatting import MESSAGE_LIMIT, split_transcript, utf16_len
from voicebot.messages import IncomingMessage
from voicebot.state import State
from voicebot.storage import TempDir


class Extras:
    """The LLM's part of an answer. Without a writer (no ``LLM_URL``) only a chat's automatic
    translation into English is made, by Whisper's own translate task."""

    def __init__(
        self,
        settings: Settings,
        writer: Writer | None,
        delivery: Delivery,
        chat: Chat,
        state: State,
        say: Callable[..., str],
        *,
        engine: Transcriber | None = None,
        temp: TempDir | None = None,
        run_blocking: Callable[..., Awaitable] | None = None,
    ):
        self.settings, self.writer, self.delivery = settings, writer, delivery
        self.chat, self.state, self.say = chat, state, say
        self.engine, self.temp = engine, temp
        # Whisper's translation is a whole pass of the model: it waits for the job queue's
        # threads like a transcription, instead of running beside them.
        self._run_blocking = run_blocking or asyncio.to_thread
        self._tasks: set[asyncio.Task] = set()

    def follow(self, answer: Answer, text: str) -> None:
        """``text`` was just delivered as ``answer``: start its extras (returns at once).
        Only a cached transcript has any (view-once ones never are): the cache knows its
        length and language, and keeps what the LLM writes."""
        media = answer.msg.media
        if answer.private or media is None or not media.document_id:
            return
        if self.writer is None and not self.can_translate(self.state.chats.get(answer.msg.chat_id).translate or ""):
            return  # no LLM: only Whisper's own English, when the chat asked for it
        cached = self.state.cache.get(media.document_id)
        if cached is None or cached.text != text:
            return
        task = asyncio.create_task(self._follow(answer, text, cached.duration, cached.language))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the extras under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Drop the extras under way (their transcripts are delivered) and close the writer."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.writer is not None:
            try:
                await self.writer.aclose()
            except Exception as exc:  # closing is best effort
                logger.debug("closing the LLM client: {}", exc)

    # -- on demand (.sum, .tr) and in the background alike --------------------------------

    async def summary_for(self, msg: IncomingMessage, text: str) -> str | None:
        """The summary of ``msg``'s transcript ``text``: cached, or written now (``None``: the
        LLM failed; logged)."""
        summary = await self._cached_or(msg, "summary", lambda: summarise(self._writer(), text))
        if summary is not None:
            self.state.search.append(msg.chat_id, msg.message_id, summary)
        return summary

    def can_translate(self, language: str) -> bool:
        """An LLM translates into any language; without one, Whisper itself into English."""
        return self.writer is not None or (language == "en" and self.engine is not None and self.engine.can_translate)

    async def translation_for(self, msg: IncomingMessage, text: str, language: str) -> str | None:
        """``msg``'s transcript in ``language``: cached, or written now (``None``: failed).
        Without an LLM, English comes from Whisper's translate task on the recording itself."""
        if self.writer is None and language == "en":
            translation = await self._cached_or(msg, "tr:en", lambda: self._whisper_english(msg))
        else:
            translation = await self._cached_or(
                msg, f"tr:{language}", lambda: translate(self._writer(), text, language)
            )
        if translation is not None:
            self.state.search.append(msg.chat_id, msg.message_id, translation)
        return translation

    def best_text(self, msg: IncomingMessage, raw: str) -> str:
        """The cleaned-up transcript where there is one, else ``raw``."""
        document_id = msg.media.document_id if msg.media else None
        return (self.state.cache.extra(document_id, "clean") if document_id else None) or raw

    def translation_parts(self, language: str, translation: str, room: int = MESSAGE_LIMIT) -> list[str]:
        """The translation as messages, each under the bot's heading (never the LLM's first word)."""
        title = self.say("translation_title", language=language)
        return [f"{title}\n{part}" for part in split_transcript(translation, limit=room - utf16_len(title) - 1)]

    def layout(self, answer: Answer, text: str, summary: str | None) -> list[str]:
        """The answer's parts: the transcript alone, or the summary first and the transcript
        below it in expandable blockquotes, every part within Telegram's 4096."""
        room = self.delivery.room(answer)
        if summary is None:
            return split_transcript(text, limit=room)
        title = self.say("summary_title")
        head = utf16_len(summary_layout(title, summary, ""))
        parts = split_transcript(text, limit=room - max(head, utf16_len(quote(""))))
        return [summary_layout(title, summary, parts[0]), *(quote(p) for p in parts[1:])]

    # -- the background part ---------------------------------------------------------------

    async def _follow(self, answer: Answer, raw: str, duration: float, language: str | None) -> None:
        try:
            text = await self._improve(answer, raw, duration)
            await self._auto_translate(answer, text, language)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transcript is delivered; nothing here may take the bot down
            logger.opt(exception=exc).error("the LLM extras for message {} failed", answer.msg.message_id)

    async def _improve(self, answer: Answer, raw: str, duration: float) -> str:
        """Clean-up and summary, then the answer edited once into its layout. Returns the text
        the summary and translation were made from."""
        if answer.target == CAPTION or self.writer is None:
            return raw  # a caption has no room for a summary (1024), and stays the owner's words
        text = raw
        if self.settings.llm_cleanup:
            text = await self._cached_or(answer.msg, "clean", lambda: clean_up(self._writer(), raw)) or raw
        limit = self.settings.summary_above_seconds
        summary = await self.summary_for(answer.msg, text) if limit and duration > limit else None
        if summary is None and text == raw:
            return text
        try:
            await self.delivery.rewrite(answer, self.layout(answer, text, summary))
        except TelegramError as exc:  # the transcript as delivered stays
            logger.warning("the answer to message {} was not rewritten: {}", answer.msg.message_id, exc)
        return text

    async def _auto_translate(self, answer: Answer, text: str, language: str | None) -> None:
        want = self.state.chats.get(answer.msg.chat_id).translate
        if not want or want == language:
            return
        translation = await self.translation_for(answer.msg, text, want)
        if translation is None:
            return
        where = None if answer.target in (REPLY, CAPTION) else answer.target
        header = self.delivery.header(answer)
        for part in self.translation_parts(want, translation, self.delivery.room(answer)):
            await self.chat.send(where, f"{header}\n{part}" if header else part, reply_to=answer.msg)

    async def _cached_or(self, msg: IncomingMessage, kind: str, make: Callable[[], Awaitable[str]]) -> str | None:
        document_id = msg.media.document_id if msg.media else None
        if document_id and not msg.media.view_once:
            cached = self.state.cache.extra(document_id, kind)
            if cached is not None:
                return cached
        try:
            text = await make()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # down, slow, refusing, malformed: skipped, said once in the log
            logger.warning("LLM {} skipped for message {} in chat {}: {}", kind, msg.message_id, msg.chat_id, exc)
            return None
        if document_id and not msg.media.view_once:
            self.state.cache.remember_extra(document_id, kind, text)
        return text

    async def _whisper_english(self, msg: IncomingMessage) -> str:
        """Download the recording again and let Whisper translate it (off the event loop);
        the temp file is gone whatever happens."""
        if self.engine is None or self.temp is None or not self.engine.can_translate:
            raise TranscriptionError("no engine here can translate")
        with self.temp.file(".audio") as path:
            await self.chat.download(msg, path)
            samples = await self._run_blocking(open_recording, path, max_duration_s=self.settings.max_duration_s)
            text = await self._run_blocking(self.engine.translate, samples)
        if not text:
            raise TranscriptionError("Whisper heard nothing to translate")
        return text

    def _writer(self) -> Writer:
        if self.writer is None:
            raise RuntimeError("no LLM_URL: nothing to ask")
        return self.writer
