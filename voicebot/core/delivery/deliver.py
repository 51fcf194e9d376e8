"""Delivery: where a transcript goes, and what every Telegram refusal on the way out means.

It owns the answer to one voice: the placeholder, its progress edits, the transcript
split into parts, the optional ``transcript.txt``, the caption on the owner's own media,
and the private targets (Saved Messages, a log chat). Every message it creates is written
to the journal with its chat before anything else happens, and a resumed job first looks
in Telegram for a message whose sending a crash interrupted (:meth:`Chat.answers`), so a
voice gets exactly one answer.

Every Telegram error ends in one of (see :func:`voicebot.errors.classify`):

* wait and retry - a flood or slow-mode wait longer than the adapter sleeps through, or an
  outage: :class:`Deferred` tells the pipeline to come back later (journaled, nothing lost);
* fall back - a chat we may not write in: the answer goes to Saved Messages; a message we may
  not edit: a new one; no right to send files: the text alone; a caption Telegram refuses: a reply;
* give up for good - :class:`GaveUp`, with one log line, and the placeholder (if any) edited
  into the reason, never left as "transcribing…".

Example::

    answer = Answer(msg, job_id=7, target=delivery.target_for(msg))
    await delivery.open(answer, say("placeholder"))
    await delivery.deliver(answer, "Hello, world.")   # or raises Deferred / GaveUp
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from voicebot.config import Settings
from voicebot.core.ports import Chat
from voicebot.errors import Kind, TelegramError, VoicebotError
from voicebot.formatting import escape, split_transcript, utf16_len
from voicebot.messages import ChatKind, IncomingMessage, MediaKind, Sent
from voicebot.state.journal import Journal

from .answer import CAPTION, REPLY, SAVED, Answer, Deferred, GaveUp

CAPTION_LIMIT = 1024  # messages.editMessage: captions are capped lower than texts
EDIT_WINDOW_S = 48 * 3600  # getConfig's edit_time_limit (172800 s); Saved Messages has none
MESSAGE_LIMIT = 4096
PROGRESS_ROOM = 4000  # a progress edit leaves room for the header and the percentage


class Delivery:
    """Sends and edits the answers to voices through a :class:`Chat`, recording each message."""

    def __init__(
        self, settings: Settings, chat: Chat, journal: Journal, say: Callable[..., str], owner_id: int | None = None
    ):
        self.settings = settings
        self.chat = chat
        self.journal = journal
        self.say = say
        self.owner_id = owner_id

    # -- where to ---------------------------------------------------------------------

    def target_for(self, msg: IncomingMessage, *, forced: bool = False) -> str:
        """Where the answer to ``msg`` goes: :data:`REPLY`, :data:`CAPTION`, or a private
        target (``saved``, a log chat id or @username).

        Example::

            delivery.target_for(voice_in_a_broadcast_channel)   # 'saved'
        """
        media = msg.media
        if media is not None and media.view_once:
            return SAVED  # its text must never reach a chat; the owner asked with .t
        private = self.settings.deliver_to if self.settings.private_delivery else SAVED
        if self.settings.private_delivery or msg.chat_kind is ChatKind.CHANNEL:
            # A broadcast channel: subscribers cannot post, and an admin's reply would be a
            # public post to every subscriber (core.telegram.org/api/channel).
            return private
        if msg.outgoing and not forced and self.settings.caption_own_voices and self._may_caption(msg):
            return CAPTION
        return REPLY

    def _may_caption(self, msg: IncomingMessage) -> bool:
        """TDLib's can_edit_message: no caption on a video note, no edit of a forwarded
        message, and none after the 48 h edit window except in Saved Messages."""
        if msg.media is None or msg.media.kind is MediaKind.VIDEO_NOTE or msg.forwarded:
            return False
        saved = self.owner_id is not None and msg.chat_id == self.owner_id
        return saved or time.time() - msg.date < EDIT_WINDOW_S - 60

    def header(self, answer: Answer) -> str:
        """The first line of a private answer: who sent the voice, and a link where one works."""
        msg = answer.msg
        if answer.target in (REPLY, CAPTION) or (msg.sender_id is None and not msg.sender_name):
            return ""  # in place, or a job resumed only to be closed: the old header stays
        who = self.say("private_header", who=msg.sender_name or str(msg.sender_id))
        link = self.chat.link(msg.chat_id, msg.message_id, username=msg.chat_username, topic_id=msg.topic_id)
        return f'{who} <a href="{escape(link)}">↗</a>' if link else who

    # -- the placeholder and progress -------------------------------------------------

    def adopt_placeholder(self, answer: Answer, sent: Sent) -> None:
        """Use an existing message (the owner's ``.t``) as the placeholder.

        Example::

            delivery.adopt_placeholder(answer, Sent(chat_id, dot_t_message_id))
        """
        self._record(answer, "1", sent)

    async def open(self, answer: Answer, html: str) -> None:
        """Show at once that the voice was heard: a placeholder, or edit the one we have.
        Never raises: without a placeholder the transcript is simply sent when ready."""
        if answer.target == CAPTION:
            return  # the caption is written once, when the transcript is ready
        try:
            if answer.adopt:
                await self._adopt(answer)
            await self._put(answer, "1", self._with_header(answer, html))
        except (TelegramError, Deferred, GaveUp) as exc:
            logger.info("no placeholder for message {} in chat {}: {}", answer.msg.message_id, answer.msg.chat_id, exc)

    async def progress(self, answer: Answer, html: str) -> None:
        """Edit the placeholder with the text so far; raises :class:`RateLimited` instead of
        waiting (progress is cosmetic), and nothing at all without a placeholder."""
        placeholder = answer.sent.get("1")
        if placeholder is None:
            return
        text = self._with_header(answer, html)
        if utf16_len(text) > PROGRESS_ROOM:
            text = self._with_header(answer, html.split("\n", 1)[0])
        await self.chat.edit(placeholder, text, progress=True)

    # -- the answer -------------------------------------------------------------------

    async def deliver(self, answer: Answer, text: str, *, notice: bool = False) -> None:
        """Deliver a transcript (``text``, plain) or a ``notice`` (the bot's own HTML words:
        no speech, too long, failed…). Raises :class:`Deferred` or :class:`GaveUp`."""
        html = text if notice else escape(text)
        if answer.adopt:
            await self._adopt(answer)
        if answer.target == CAPTION:
            if await self._caption(answer, text, notice):
                return
            await self._retarget(answer, REPLY, "Telegram refused the caption")
        while True:
            try:
                await self._deliver_to_target(answer, html, plain=None if notice else text)
                return
            except TelegramError as exc:
                if exc.kind is not Kind.FORBIDDEN:
                    raise self._verdict(answer, exc) from exc
                fallback = self._fallback(answer)
                if fallback is None:
                    raise GaveUp(f"cannot write in {answer.target}: {exc.name}") from exc
                logger.warning(
                    "cannot write in chat {} ({}); the answer to message {} goes to {}",
                    answer.msg.chat_id if answer.target == REPLY else answer.target,
                    exc.name,
                    answer.msg.message_id,
                    fallback,
                )
                await self._retarget(answer, fallback, exc.name)

    def room(self, answer: Answer) -> int:
        """How many UTF-16 units one part of the answer may hold beside its header."""
        header = self.header(answer)
        return MESSAGE_LIMIT - utf16_len(header) - 1 if header else MESSAGE_LIMIT

    async def rewrite(self, answer: Answer, parts: list[str]) -> None:
        """Make a delivered answer read ``parts`` (HTML, each within :meth:`room`): edit the
        messages it has, send what is new, delete parts left over. Raises :class:`TelegramError`."""
        for number, part in enumerate(parts, 1):
            await self._put(answer, str(number), self._with_header(answer, part))
        for slot in [s for s in answer.sent if s.isdigit() and int(s) > len(parts)]:
            await self._drop(answer, slot)

    async def give_up(self, answer: Answer, reason_html: str) -> None:
        """Turn the placeholder (if any) into ``reason_html``: never left as "transcribing…".
        If Telegram refuses the edit too, the placeholder is replaced by a new message."""
        placeholder = answer.sent.get("1")
        if placeholder is None:
            return
        html = self._with_header(answer, reason_html)
        try:
            await self.chat.edit(placeholder, html)
            return
        except TelegramError as exc:
            if exc.kind is Kind.UNCHANGED:
                return
            logger.info("could not edit the placeholder into the reason ({}); replacing it", exc)
        try:
            await self.chat.delete(placeholder)
            if answer.msg.sender_id is not None or answer.msg.sender_name:  # not a stub after a restart
                await self._send(answer, html)
        except TelegramError as exc:
            logger.warning("the placeholder of message {} could not be closed: {}", answer.msg.message_id, exc)

    async def _deliver_to_target(self, answer: Answer, html: str, plain: str | None) -> None:
        parts = split_transcript(plain, limit=self.room(answer)) if plain is not None else [html]
        if not parts:
            parts = [html]
        for number, part in enumerate(parts, 1):
            await self._put(answer, str(number), self._with_header(answer, part))
        # A longer answer before a crash (another split) or a stale extra: remove it.
        for slot in [s for s in answer.sent if s.isdigit() and int(s) > len(parts)]:
            await self._drop(answer, slot)
        if plain is not None and self.settings.attach_txt_above and len(plain) > self.settings.attach_txt_above:
            await self._attach(answer, plain)

    async def _put(self, answer: Answer, slot: str, html: str) -> None:
        """Make slot ``slot`` read ``html``: edit the message we have, or send a new one."""
        existing = answer.sent.get(slot)
        if existing is not None:
            try:
                await self.chat.edit(existing, html)
                return
            except TelegramError as exc:
                if exc.kind is Kind.UNCHANGED:
                    return
                if exc.kind is not Kind.NOT_EDITABLE:
                    raise
                # Deleted by someone, or too old to edit: a new message replaces it.
                logger.info("message {} cannot be edited ({}); sending a new one", existing.message_id, exc.name)
                self._forget(answer, slot)
        sent = await self._send(answer, html)
        self._record(answer, slot, sent)

    async def _send(self, answer: Answer, html: str) -> Sent:
        where = None if answer.target == REPLY else answer.target
        try:
            return await self.chat.send(where, html, reply_to=answer.msg)
        except TelegramError as exc:
            if exc.kind is Kind.BAD_REPLY and where is not None:
                # The voice cannot be quoted from here (a protected chat, or gone): the header
                # still says whose it was.
                return await self.chat.send(where, html)
            if exc.kind is Kind.SENT:
                # The same request reached Telegram before (re-sent after a reconnect).
                found = await self.chat.answers(where, answer.msg, answer.created_at - 60)
                known = {s.message_id for s in answer.sent.values()}
                fresh = [s for s in found if s.message_id not in known and not s.document]
                if fresh:
                    return fresh[0]
            raise

    async def _attach(self, answer: Answer, plain: str) -> None:
        if "txt" in answer.sent:
            return
        where = None if answer.target == REPLY else answer.target
        try:
            sent = await self.chat.send_file(where, "transcript.txt", plain.encode(), reply_to=answer.msg)
        except TelegramError as exc:
            if exc.kind in (Kind.NO_FILES, Kind.FORBIDDEN):
                logger.info(
                    "transcript.txt not sent to chat {} ({}): the text is there in full", answer.msg.chat_id, exc.name
                )
                return
            raise
        self._record(answer, "txt", sent)

    async def _caption(self, answer: Answer, text: str, notice: bool) -> bool:
        """The owner's own media: the transcript goes under it. False: reply instead."""
        msg = answer.msg
        if notice or not text:
            return False
        own = msg.text.strip()
        caption = f"{escape(own)}\n\n🎙 {escape(text)}" if own else escape(text)
        if utf16_len(caption) > CAPTION_LIMIT:
            return False
        try:
            await self.chat.edit(Sent(msg.chat_id, msg.message_id, msg.ref), caption)
        except TelegramError as exc:
            if exc.kind is Kind.UNCHANGED:
                return True
            if exc.kind in (Kind.WAIT, Kind.RETRY):
                raise self._verdict(answer, exc) from exc
            logger.info("caption refused on message {} ({}); replying instead", msg.message_id, exc.name)
            return False
        return True

    async def _adopt(self, answer: Answer) -> None:
        """After a crash: take over messages we sent but never recorded."""
        where = None if answer.target == REPLY else answer.target
        if answer.target == CAPTION:
            answer.adopt = False
            return
        try:
            found = await self.chat.answers(where, answer.msg, answer.created_at - 60)
        except TelegramError as exc:
            raise self._verdict(answer, exc) from exc  # still to adopt, next time
        answer.adopt = False
        known = {s.message_id for s in answer.sent.values()}
        for sent in found:
            if sent.message_id in known:
                continue
            slot = "txt" if sent.document else next(str(n) for n in range(1, 10_000) if str(n) not in answer.sent)
            if slot in answer.sent:
                continue
            logger.info(
                "adopting message {} in chat {} as part {} of the answer to message {}",
                sent.message_id,
                sent.chat_id,
                slot,
                answer.msg.message_id,
            )
            self._record(answer, slot, sent)

    async def _drop(self, answer: Answer, slot: str) -> None:
        sent = self._forget(answer, slot)
        try:
            await self.chat.delete(sent)
        except TelegramError as exc:
            logger.info("could not delete a stale part {}: {}", sent.message_id, exc)

    async def _retarget(self, answer: Answer, target: str, reason: str) -> None:
        """Send the answer elsewhere from now on; the placeholder (if any) says where."""
        placeholder = answer.sent.get("1")
        for slot in list(answer.sent):
            self._forget(answer, slot)
        answer.target = target
        if answer.job_id is not None:
            record = self.journal.get(answer.job_id)
            if record is not None:
                self.journal.set_payload(answer.job_id, {**record.payload, "target": target})
        if placeholder is not None and target not in (REPLY, CAPTION):
            try:  # likely refused too, since we cannot write there: best effort
                await self.chat.edit(placeholder, self.say("moved"))
            except TelegramError:
                pass
        logger.debug("answer to message {} retargeted to {} ({})", answer.msg.message_id, target, reason)

    def _fallback(self, answer: Answer) -> str | None:
        if answer.target == SAVED:
            return None
        return SAVED  # a log chat or the voice's chat refused us: the owner's own chat remains

    def _verdict(self, answer: Answer, exc: TelegramError) -> VoicebotError:
        kind = exc.kind
        if kind is Kind.WAIT:
            return Deferred(exc.seconds or 60, f"flood limit {exc.name}")
        if kind is Kind.RETRY or kind is Kind.SENT:
            answer.adopt = True  # the request may have arrived: look before sending again
            return Deferred(30, f"Telegram unavailable ({exc.name})", outage=kind is Kind.RETRY)
        return GaveUp(f"{exc.name}")

    def _record(self, answer: Answer, slot: str, sent: Sent) -> None:
        answer.sent[slot] = sent
        if answer.job_id is not None:
            self.journal.sent(answer.job_id, slot, sent.chat_id, sent.message_id)

    def _forget(self, answer: Answer, slot: str) -> Sent:
        sent = answer.sent.pop(slot)
        if answer.job_id is not None:
            self.journal.unsent(answer.job_id, slot)
        return sent

    def _with_header(self, answer: Answer, html: str) -> str:
        header = self.header(answer)
        return f"{header}\n{html}" if header else html
