"""The core's ports: what it asks of Telegram (:class:`Chat`) and of an LLM (:class:`Writer`),
and the narrow ways the owner's controls reach the pipeline (:class:`Admission`,
:class:`StatusView`; recovery's ``JobSink`` lives beside recovery, its consumer).

Each port is defined by its consumer. :mod:`voicebot.telegram` implements :class:`Chat` with
Telethon; tests implement it in memory (``tests/helpers.MemoryChat``). The pipeline implements
the others structurally, so commands, reactions, recovery and backfill never import it.

Every failure of a :class:`Chat` request is raised as a :class:`~voicebot.errors.TelegramError`
whose ``kind`` says what it means; flood waits up to a few minutes are waited out inside the
adapter.

Example::

    sent = await chat.send(None, "🎙 transcribing…", reply_to=msg)   # a reply in msg's chat
    await chat.edit(sent, "Hello, world.")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from voicebot.engine.base import EndpointStatus
from voicebot.messages import Dialog, IncomingMessage, MediaKind, Sent


class Chat(Protocol):
    """What the core needs from Telegram. Texts are HTML (``parse_mode='html'``)."""

    async def send(self, where: str | None, html: str, *, reply_to: IncomingMessage | None = None) -> Sent:
        """Send ``html``, as an answer to ``reply_to`` if given. ``where`` is ``None`` for a
        reply in ``reply_to``'s own chat (and forum topic); ``saved`` (Saved Messages), a
        chat id or an @username sends there, quoting ``reply_to`` as a reply to another chat
        (``InputReplyToMessage.reply_to_peer_id``, core.telegram.org/api/reply)."""

    async def send_file(
        self, where: str | None, name: str, data: bytes, *, reply_to: IncomingMessage | None = None
    ) -> Sent:
        """Send a document, addressed like :meth:`send`."""

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        """Replace a message's text (a media message's caption). With ``progress``, raise
        :class:`~voicebot.errors.RateLimited` at once instead of waiting out a flood limit."""

    async def delete(self, sent: Sent) -> None:
        """Delete a message (for everyone)."""

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        """Save ``msg``'s media to ``dest``; raise :class:`~voicebot.errors.DownloadError`."""

    async def fetch(self, chat_id: int, message_id: int, peer: str = "") -> IncomingMessage | None:
        """The message, or ``None`` if it is gone. ``peer``: :attr:`IncomingMessage.peer`."""

    async def reactions(self, chat_id: int, ids: list[int], peer: str = "") -> dict[int, frozenset[str]]:
        """The owner's own reactions on up to 100 messages of one chat
        (``messages.getMessagesReactions``); a message without any is left out. Any flood wait
        is raised as :class:`~voicebot.errors.RateLimited` at once: polling can wait."""

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        """The message ``msg`` replies to, if any."""

    async def answers(self, where: str | None, msg: IncomingMessage, since: float) -> list[Sent]:
        """Our own messages in ``where`` (addressed like :meth:`send`) that answer ``msg``
        (reply to it), sent after ``since`` (Unix time), oldest first. After a crash this
        finds a message whose sending was in flight, so it is adopted, not sent twice."""

    def dialogs(self) -> AsyncIterator[Dialog]:
        """The account's chats: pinned first, then newest first. Flood waits pause it."""

    async def recordings(
        self, chat_id: int, since: float, kinds: frozenset[MediaKind], limit: int
    ) -> list[IncomingMessage]:
        """Up to ``limit`` messages of a chat newer than ``since`` (Unix time) that carry media of
        one of ``kinds``, newest first, however many other messages came after them."""

    async def members(self, msg: IncomingMessage, limit: int) -> list[str]:
        """The names of the members of ``msg``'s group, or ``[]`` when it has more than
        ``limit`` (or is not a group). Cached per chat for a while: a voice costs no request."""

    async def contacts(self) -> list[str]:
        """The names of the owner's contacts (``contacts.getContacts``), cached for a while."""

    def link(
        self, chat_id: int, message_id: int, *, username: str | None = None, topic_id: int | None = None
    ) -> str | None:
        """A link that opens the message on every Telegram client, or ``None`` where none
        exists. Supergroups and channels have message links (core.telegram.org/api/links);
        a private chat has none (``tg://openmessage`` opens only on Android), so its link is
        a mention of the user, which opens the chat; basic groups have nothing."""


class Writer(Protocol):
    """An LLM that writes text about a transcript (``voicebot.llm.client.LlmClient`` on an
    OpenAI-compatible chat endpoint). Any failure (down, slower than its timeout, refusing,
    malformed) is raised; the core treats every exception as "no text this time"."""

    async def complete(self, system: str, user: str, *, max_tokens: int = 400) -> str:
        """The model's answer to ``user`` under the ``system`` prompt, as plain text."""


class Admission(Protocol):
    """What the owner's controls and backfill may ask of the pipeline: take this recording."""

    async def accept(
        self, msg: IncomingMessage, *, forced: bool = False, placeholder: Sent | None = None, again: bool = False
    ) -> bool:
        """Queue ``msg`` if the settings (or ``forced``: the owner asked) say so; ``placeholder``
        is the owner's ``.t`` to edit into the answer; ``again`` answers a journaled message
        once more. Returns whether an answer is on its way."""


@dataclass(frozen=True)
class Status:
    """A snapshot of the running pipeline, for ``.status``."""

    waiting: int
    running: int
    done: int
    failed: int
    started_at: float  # Unix time
    rtf: float | None  # processing time ÷ audio time so far
    model: str
    device: str
    cached: int  # transcripts in the cache
    endpoints: tuple[EndpointStatus, ...] = ()


class StatusView(Protocol):
    """What ``.status`` may read of the pipeline."""

    def status(self) -> Status:
        """The pipeline's state right now."""
