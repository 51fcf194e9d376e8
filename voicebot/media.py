"""Media selection: which incoming messages get transcribed.

The Telegram adapter describes each message as an :class:`IncomingMessage` (plain data,
no Telethon), and :func:`decide` answers what to do with it under the settings.

Example::

    msg = IncomingMessage(chat_id=42, message_id=7, chat_kind=ChatKind.PRIVATE, sender_id=42,
                          outgoing=False, media=Media(MediaKind.VOICE, size=20_000, duration=4))
    decide(msg, Settings()).action   # Action.TRANSCRIBE
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .config import Settings


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
    mime_type: str = ""
    document_id: int | None = None
    file_name: str = ""


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
    ref: Any = field(default=None, compare=False, repr=False)


class Action(enum.Enum):
    TRANSCRIBE = "transcribe"
    IGNORE = "ignore"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""  # why ignored (for the debug log), or the say() key for a refusal
    values: dict = field(default_factory=dict)  # values for the refusal message


def decide(msg: IncomingMessage, settings: Settings) -> Decision:
    """Whether to transcribe ``msg``; refusals (over the caps) carry a reply key.

    Example::

        decide(msg, settings)  # Decision(action=Action.IGNORE, reason='groups are off')
    """
    media = msg.media
    if media is None:
        return Decision(Action.IGNORE, "no media")
    kind_on = {
        MediaKind.VOICE: settings.transcribe_voice,
        MediaKind.VIDEO_NOTE: settings.transcribe_video_notes,
        MediaKind.AUDIO: settings.transcribe_audio,
        MediaKind.VIDEO: settings.transcribe_video,
    }[media.kind]
    if not kind_on:
        return Decision(Action.IGNORE, f"{media.kind.value} is off")
    chat_on = {
        ChatKind.PRIVATE: settings.transcribe_private,
        ChatKind.GROUP: settings.transcribe_groups,
        ChatKind.CHANNEL: settings.transcribe_channels,
    }[msg.chat_kind]
    names = _chat_names(msg)
    if names & settings.deny_chats:
        return Decision(Action.IGNORE, "chat is in DENY_CHATS")
    if settings.allow_chats:
        # An explicit allow-list overrides the per-kind switches: listing a group turns it on.
        if not names & settings.allow_chats:
            return Decision(Action.IGNORE, "chat is not in ALLOW_CHATS")
    elif not chat_on:
        return Decision(Action.IGNORE, f"{msg.chat_kind.value} chats are off")
    if msg.outgoing and not settings.transcribe_outgoing:
        return Decision(Action.IGNORE, "outgoing messages are off")
    if media.size > settings.max_file_bytes:
        return Decision(Action.REFUSE, "too_big", {"size_mb": media.size / 2**20,
                                                  "limit_mb": settings.max_file_mb})
    if media.duration is not None and media.duration > settings.max_duration_s:
        return Decision(Action.REFUSE, "too_long", {"minutes": media.duration / 60,
                                                   "limit_minutes": settings.max_duration_s / 60})
    return Decision(Action.TRANSCRIBE)


def _chat_names(msg: IncomingMessage) -> set[str]:
    names = {str(msg.chat_id)}
    if msg.chat_username:
        names.add("@" + msg.chat_username.lower())
    return names
