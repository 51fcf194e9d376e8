"""Routing: what each item from Telegram is, and who handles it.

An owner's text that parses as a command goes to the commands, the owner's reactions to the
reactions, and any other message with media to the pipeline's admission (python-telegram-bot's
handler registry is the model: the pipeline itself never routes).

Example::

    dispatch = Dispatch(settings.command_prefix, owner_id, commands, reactions, admit=pipeline)
    await dispatch.on_message(incoming)   # never raises; replies or logs
"""

from __future__ import annotations

from loguru import logger

from voicebot.core.controls.commands import Commands, parse_command
from voicebot.core.controls.reactions import Reactions
from voicebot.core.ports import Admission
from voicebot.messages import IncomingMessage, Reaction


class Dispatch:
    """Hands every incoming message and reaction to the one that handles it."""

    def __init__(
        self, prefix: str, owner_id: int | None, commands: Commands, reactions: Reactions, *, admit: Admission
    ):
        self.prefix, self.owner_id = prefix, owner_id
        self.commands, self.reactions, self.admit = commands, reactions, admit

    async def on_message(self, msg: IncomingMessage) -> None:
        """Handle one incoming message. Never raises: every failure becomes a reply or a log line."""
        try:
            command = parse_command(msg.text, self.prefix) if msg.text else None
            if command and self.is_owner(msg):
                await self.commands.run(command, msg)
            elif msg.media is not None:
                await self.admit.accept(msg)
        except Exception:
            logger.exception("could not handle message {} in chat {}", msg.message_id, msg.chat_id)

    async def on_reaction(self, reaction: Reaction) -> None:
        """The owner's reactions on a message changed (never raises)."""
        await self.reactions.on_reaction(reaction)

    def is_owner(self, msg: IncomingMessage) -> bool:
        """Sent from the owner's account: by its user id, or ``out`` (also when posting
        anonymously or as a channel, where the sender is the chat). In a group anyone
        else could type ".t"."""
        return msg.outgoing or (self.owner_id is not None and msg.sender_id == self.owner_id)
