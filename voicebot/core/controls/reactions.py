"""Reactions as controls: the owner reacts to a recording with ``REACT_TO_TRANSCRIBE`` (✍) and
gets its transcript, in any chat that allows ✍, where automatic transcription is off too.

Telegram documents no way the owner's other sessions (the bot is one) hear of the owner's own
reaction: core.telegram.org/api/reactions promises ``updateMessageReactions`` to the message's
author only and tells apps to poll ``messages.getMessagesReactions``. So three ways lead here,
and any of them may be the one that works: ``updateMessageReactions`` (:meth:`Reactions.
on_reaction`), an edit of the message carrying its ``reactions`` (the adapter reads both the
same way: ``chosen_order`` marks the viewer's own), and the poll of recent unanswered
recordings (:mod:`.reaction_poll`, :meth:`Reactions.honour`), which also looks once at start
for reactions given while the bot was down. An update carries the message's whole reaction
state, not the change, so "the owner reacted ✍" is ``✍ in mine``; someone else's ✍ is not the
owner's, and a removal is an update without it. Every path, every repeat and every toggle meets
the journal: a recording already answered (automatically, by ``.t`` or by an earlier reaction)
is never answered again. The answer goes where ``.t``'s would (a reply; Saved Messages for
view-once recordings and in private mode).

Example::

    reactions = Reactions("✍", chat, state.journal, admit=pipeline)
    await reactions.on_reaction(Reaction(chat_id=42, message_id=7, mine=frozenset({"✍"})))
"""

from __future__ import annotations

from loguru import logger

from voicebot.core.ports import Admission, Chat
from voicebot.messages import IncomingMessage, Reaction
from voicebot.state.journal import Journal


class Reactions:
    """Turns the owner's ``REACT_TO_TRANSCRIBE`` reactions into admitted jobs."""

    def __init__(self, emoji: str, chat: Chat, journal: Journal, admit: Admission):
        self.emoji, self.chat, self.journal, self.admit = emoji, chat, journal, admit
        self._busy: set[tuple[int, int]] = set()  # fetched right now: a quick toggle asks once

    async def on_reaction(self, reaction: Reaction) -> None:
        """Handle one reaction update. Never raises."""
        wanted = self.emoji
        key = (reaction.chat_id, reaction.message_id)
        if not wanted or wanted not in reaction.mine or key in self._busy:
            return  # another emoji, someone else's, removed, or being handled
        if self.journal.handled(*key):
            logger.debug("reaction on message {} in chat {}: already answered", reaction.message_id, reaction.chat_id)
            return
        self._busy.add(key)
        try:
            msg = await self.chat.fetch(reaction.chat_id, reaction.message_id, reaction.peer)
        except Exception:
            logger.exception("could not fetch message {} in chat {}", reaction.message_id, reaction.chat_id)
            return
        finally:
            self._busy.discard(key)  # honour() takes it again before its first await
        if msg is None or msg.media is None:
            logger.debug("reaction on message {} in chat {}: not a recording", reaction.message_id, reaction.chat_id)
            return
        await self.honour(msg)

    async def honour(self, msg: IncomingMessage) -> bool:
        """The owner's reaction is on ``msg`` (a recording): answer it, once. Never raises.
        ``False`` when another path is handling it right now (ask again later)."""
        key = (msg.chat_id, msg.message_id)
        if key in self._busy:
            return False
        if self.journal.handled(*key):
            return True
        self._busy.add(key)
        try:
            logger.info("owner's {} on message {} in chat {}: transcribing", self.emoji, msg.message_id, msg.chat_id)
            await self.admit.accept(msg, forced=True)  # journaled: a second reaction finds it handled
        except Exception:
            logger.exception("could not handle a reaction on message {} in chat {}", msg.message_id, msg.chat_id)
        finally:
            self._busy.discard(key)
        return True
