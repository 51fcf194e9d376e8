"""Each voice's vocabulary: the names and terms its chat is likely to use, for Whisper's prompt.

Most specific first, cut at about 200 tokens (:func:`voicebot.engine.base.budgeted`):
the chat's own terms (``.vocab``), the sender's name and the chat's title, the members of a
small group, ``VOCABULARY``, then the owner's contacts (``VOCABULARY_CONTACTS``).

Example::

    budgeted(["Siobhan"], ["Alice Smith"], ["Llandudno"])   # ('Siobhan', 'Alice Smith', 'Llandudno')
    terms = await vocabulary_for(msg, settings, chats.get(msg.chat_id), chat)
"""

from __future__ import annotations

from loguru import logger

from voicebot.config import Settings
from voicebot.core.ports import Chat
from voicebot.engine.base import budgeted
from voicebot.errors import TelegramError
from voicebot.messages import ChatKind, IncomingMessage
from voicebot.state.chat_settings import ChatSettings

SMALL_GROUP = 50  # members; a larger group's names would crowd out everything else


async def vocabulary_for(msg: IncomingMessage, settings: Settings, here: ChatSettings, chat: Chat) -> tuple[str, ...]:
    """The vocabulary for ``msg``'s voice. Telegram is asked only for a small group's members
    and, with ``VOCABULARY_CONTACTS``, the contacts (both cached by the adapter); a refusal
    there only leaves those names out."""
    members: list[str] = []
    contacts: list[str] = []
    if msg.chat_kind is ChatKind.GROUP:
        try:
            members = await chat.members(msg, SMALL_GROUP)
        except TelegramError as exc:
            logger.debug("no member names for chat {}: {}", msg.chat_id, exc)
    if settings.vocabulary_contacts:
        try:
            contacts = await chat.contacts()
        except TelegramError as exc:
            logger.debug("no contact names: {}", exc)
    return budgeted(
        here.vocabulary,
        [msg.sender_name, msg.chat_title],
        members,
        settings.vocabulary,
        contacts,
    )
