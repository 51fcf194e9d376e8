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
    document_id: int | None = None  # Telegram's id of the file: the same for every forward of it


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
    date: float = 0.0  # Unix time
    reply_to: int | None = None  # id of the message this one replies to
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


def decide(msg: IncomingMessage, settings: Settings, *, chat_auto: bool | None = None,
           forced: bool = False) -> Decision:
    """Whether to transcribe ``msg``; refusals (over the caps) carry a reply key.

    ``chat_auto`` is the chat's ``.auto on|off`` override (None: follow the settings);
    ``forced`` is the owner's ``.t``: any media kind, any chat, only the caps still apply.

    Example::

        decide(msg, settings)  # Decision(action=Action.IGNORE, reason='groups are off')
    """
    media = msg.media
    if media is None:
        return Decision(Action.IGNORE, "no media")
    if not forced:
        ignored = _ignored(msg, media, settings, chat_auto)
        if ignored:
            return Decision(Action.IGNORE, ignored)
    if media.size > settings.max_file_bytes:
        return Decision(Action.REFUSE, "too_big", {"size_mb": media.size / 2**20,
                                                  "limit_mb": settings.max_file_mb})
    if media.duration is not None and media.duration > settings.max_duration_s:
        return Decision(Action.REFUSE, "too_long", {"minutes": media.duration / 60,
                                                   "limit_minutes": settings.max_duration_s / 60})
    return Decision(Action.TRANSCRIBE)


def _ignored(msg: IncomingMessage, media: Media, settings: Settings, chat_auto: bool | None) -> str:
    """Why automatic transcription skips ``msg``, or "" when it does not."""
    kind_on = {
        MediaKind.VOICE: settings.transcribe_voice,
        MediaKind.VIDEO_NOTE: settings.transcribe_video_notes,
        MediaKind.AUDIO: settings.transcribe_audio,
        MediaKind.VIDEO: settings.transcribe_video,
    }[media.kind]
    if not kind_on:
        return f"{media.kind.value} is off"
    if msg.outgoing and not settings.transcribe_outgoing:
        return "outgoing messages are off"
    if chat_auto is False:
        return "automatic transcription is off in this chat"
    if chat_auto is True:
        return ""  # the owner switched this chat on: lists and chat kinds do not apply
    names = _chat_names(msg)
    if names & settings.deny_chats:
        return "chat is in DENY_CHATS"
    if settings.allow_chats:
        # An explicit allow-list overrides the per-kind switches: listing a group turns it on.
        return "" if names & settings.allow_chats else "chat is not in ALLOW_CHATS"
    chat_on = {
        ChatKind.PRIVATE: settings.transcribe_private,
        ChatKind.GROUP: settings.transcribe_groups,
        ChatKind.CHANNEL: settings.transcribe_channels,
    }[msg.chat_kind]
    return "" if chat_on else f"{msg.chat_kind.value} chats are off"


def _chat_names(msg: IncomingMessage) -> set[str]:
    names = {str(msg.chat_id)}
    if msg.chat_username:
        names.add("@" + msg.chat_username.lower())
    return names
