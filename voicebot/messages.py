"""Plain data that crosses every boundary: what Telegram handed over, what was sent.

The adapter (:mod:`voicebot.telegram`) builds these from Telethon's objects; the core reads
them and never sees Telethon. Nothing here imports the rest of voicebot. (Named "messages",
not "model": in this project "model" means the Whisper model.)

Example::

    msg = IncomingMessage(chat_id=42, message_id=7, chat_kind=ChatKind.PRIVATE, sender_id=42,
                          outgoing=False, media=Media(MediaKind.VOICE, size=20_000, duration=4))
    Reaction(chat_id=42, message_id=7, mine=frozenset({"✍"}))
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class MediaKind(enum.Enum):
    VOICE = "voice"
    VIDEO_NOTE = "video_note"
    AUDIO = "audio"
    VIDEO = "video"


class ChatKind(enum.Enum):
    PRIVATE = "private"
    GROUP = "group"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Media:
    """What the message carries. ``duration`` is what the sender's client claimed, if anything."""

    kind: MediaKind
    size: int
    duration: float | None = None
    document_id: int | None = None  # Telegram's id of the file: the same for every forward of it
    # View-once / self-destructing (messageMediaDocument.ttl_seconds): the sender meant it to
    # be heard once, so its text is never posted, cached or indexed.
    view_once: bool = False


@dataclass(frozen=True)
class IncomingMessage:
    """A Telegram message as the core sees it. ``ref`` is the adapter's own handle."""

    chat_id: int
    message_id: int
    chat_kind: ChatKind
    sender_id: int | None
    outgoing: bool
    media: Media | None = None
    text: str = ""
    chat_username: str | None = None
    sender_name: str = ""
    chat_title: str = ""  # a group's or channel's title; a private chat's is the user's name
    date: float = 0.0  # Unix time
    reply_to: int | None = None  # id of the message this one replies to
    topic_id: int | None = None  # forum topic (its first message's id); replies must stay in it
    forwarded: bool = False  # carries fwd_from: Telegram refuses to edit such a message
    # A channel post copied into the channel's linked discussion group: the post itself is
    # the one to answer (privately), never this copy.
    auto_forward: bool = False
    peer: str = ""  # the adapter's way back to the chat after a restart (kept in the journal)
    ref: Any = field(default=None, compare=False, repr=False)


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


@dataclass(frozen=True)
class Reaction:
    """The owner's own reactions on one message now (``mine``), as the adapter read them."""

    chat_id: int
    message_id: int
    mine: frozenset[str]
    peer: str = ""  # the adapter's way back to the chat (see IncomingMessage.peer)


@dataclass(frozen=True)
class CodeSent:
    """Where Telegram sent the login code (``auth.sentCode.type``) and how many digits it has."""

    via: str  # app, sms, call, flash_call, missed_call, email, setup_email, fragment, firebase, sms_word, ...
    length: int | None = None
    hint: str | None = None  # the number's pattern or prefix, the email pattern, a Fragment URL, a first word


@dataclass(frozen=True)
class QrCode:
    """A login token as a ``tg://login?token=…`` URL and when Telegram expires it (Unix time)."""

    url: str
    expires: float
