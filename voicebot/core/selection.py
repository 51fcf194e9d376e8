"""Media selection: which incoming messages get transcribed.

The Telegram adapter describes each message as an :class:`~voicebot.messages.IncomingMessage`
(plain data, no Telethon), and :func:`decide` answers what to do with it under the settings.

Example::

    msg = IncomingMessage(chat_id=42, message_id=7, chat_kind=ChatKind.PRIVATE, sender_id=42,
                          outgoing=False, media=Media(MediaKind.VOICE, size=20_000, duration=4))
    decide(msg, Settings()).action   # Action.TRANSCRIBE
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from voicebot.config import Settings
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind


class Action(enum.Enum):
    TRANSCRIBE = "transcribe"
    IGNORE = "ignore"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""  # why ignored (for the debug log), or the say() key for a refusal
    values: dict = field(default_factory=dict)  # values for the refusal message


def decide(
    msg: IncomingMessage, settings: Settings, *, chat_auto: bool | None = None, forced: bool = False
) -> Decision:
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
        return Decision(Action.REFUSE, "too_big", {"size_mb": media.size / 2**20, "limit_mb": settings.max_file_mb})
    if media.duration is not None and media.duration > settings.max_duration_s:
        return Decision(
            Action.REFUSE, "too_long", {"minutes": media.duration / 60, "limit_minutes": settings.max_duration_s / 60}
        )
    return Decision(Action.TRANSCRIBE)


def kind_enabled(kind: MediaKind, settings: Settings) -> bool:
    """Whether recordings of ``kind`` are transcribed automatically (TRANSCRIBE_VOICE and the like)."""
    return {
        MediaKind.VOICE: settings.transcribe_voice,
        MediaKind.VIDEO_NOTE: settings.transcribe_video_notes,
        MediaKind.AUDIO: settings.transcribe_audio,
        MediaKind.VIDEO: settings.transcribe_video,
    }[kind]


def _ignored(msg: IncomingMessage, media: Media, settings: Settings, chat_auto: bool | None) -> str:
    """Why automatic transcription skips ``msg``, or "" when it does not."""
    if not kind_enabled(media.kind, settings):
        return f"{media.kind.value} is off"
    if media.view_once:
        return "view-once media are only transcribed on request"
    if msg.auto_forward:
        return "a channel post copied into its discussion group"
    if msg.outgoing and not settings.transcribe_outgoing:
        return "outgoing messages are off"
    return chat_ignored(msg.chat_kind, chat_names(msg.chat_id, msg.chat_username), settings, chat_auto)


def chat_ignored(kind: ChatKind, names: set[str], settings: Settings, chat_auto: bool | None) -> str:
    """Why automatic transcription is off in a chat (its id and @username in ``names``), or "".

    Backfill uses it to skip whole chats before reading them.

    Example::

        chat_ignored(ChatKind.GROUP, {"-100123"}, Settings(), None)   # 'group chats are off'
    """
    if chat_auto is False:
        return "automatic transcription is off in this chat"
    if chat_auto is True:
        return ""  # the owner switched this chat on: lists and chat kinds do not apply
    if names & settings.deny_chats:
        return "chat is in DENY_CHATS"
    if settings.allow_chats:
        # An explicit allow-list overrides the per-kind switches: listing a group turns it on.
        return "" if names & settings.allow_chats else "chat is not in ALLOW_CHATS"
    chat_on = {
        ChatKind.PRIVATE: settings.transcribe_private,
        ChatKind.GROUP: settings.transcribe_groups,
        ChatKind.CHANNEL: settings.transcribe_channels,
    }[kind]
    return "" if chat_on else f"{kind.value} chats are off"


def chat_names(chat_id: int, username: str | None) -> set[str]:
    """How ALLOW_CHATS / DENY_CHATS may name a chat: its id, and ``@username`` if it has one."""
    names = {str(chat_id)}
    if username:
        names.add("@" + username.lower())
    return names
