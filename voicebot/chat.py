"""The core's port to Telegram: what the pipeline, delivery and commands may ask of it.

:mod:`voicebot.telegram` implements :class:`Chat` with Telethon; tests implement it in
memory (``tests/helpers.MemoryChat``). Every failure of a request is raised as a
:class:`~voicebot.errors.TelegramError` whose ``kind`` says what it means; flood waits up
to a few minutes are waited out inside the adapter.

Example::

    sent = await chat.send(None, "🎙 transcribing…", reply_to=msg)   # a reply in msg's chat
    await chat.edit(sent, "Hello, world.")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .media import ChatKind, IncomingMessage


@dataclass(frozen=True)
class Sent:
    """A message the bot sent (or the owner's own message it may edit). Message ids are
    numbered per chat (per channel for supergroups), so the chat is part of the name."""

    chat_id: int
    message_id: int
    ref: Any = None
    document: bool = False  # a file (transcript.txt), not a text message


@dataclass(frozen=True)
class Dialog:
    """One chat in the account's dialog list, for backfill."""

    chat_id: int
    kind: ChatKind
    username: str | None
    pinned: bool
    last_date: float  # Unix time of its newest message


class Chat(Protocol):
    """What the core needs from Telegram. Texts are HTML (``parse_mode='html'``)."""

    async def send(self, where: str | None, html: str, *, reply_to: IncomingMessage | None = None) -> Sent:
        """Send ``html``, as an answer to ``reply_to`` if given. ``where`` is ``None`` for a
        reply in ``reply_to``'s own chat (and forum topic); ``saved`` (Saved Messages), a
        chat id or an @username sends there, quoting ``reply_to`` as a reply to another chat
        (``InputReplyToMessage.reply_to_peer_id``, core.telegram.org/api/reply)."""

    async def send_file(self, where: str | None, name: str, data: bytes, *,
                        reply_to: IncomingMessage | None = None) -> Sent:
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

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        """The message ``msg`` replies to, if any."""

    async def answers(self, where: str | None, msg: IncomingMessage, since: float) -> list[Sent]:
        """Our own messages in ``where`` (addressed like :meth:`send`) that answer ``msg``
        (reply to it), sent after ``since`` (Unix time), oldest first. After a crash this
        finds a message whose sending was in flight, so it is adopted, not sent twice."""

    def dialogs(self) -> AsyncIterator[Dialog]:
        """The account's chats: pinned first, then newest first. Flood waits pause it."""

    async def history(self, chat_id: int, since: float, limit: int) -> list[IncomingMessage]:
        """Up to ``limit`` messages of a chat newer than ``since``, newest first."""

    def link(self, chat_id: int, message_id: int, *, username: str | None = None,
             topic_id: int | None = None) -> str | None:
        """A link that opens the message on every Telegram client, or ``None`` where none
        exists. Supergroups and channels have message links (core.telegram.org/api/links);
        a private chat has none (``tg://openmessage`` opens only on Android), so its link is
        a mention of the user, which opens the chat; basic groups have nothing."""
