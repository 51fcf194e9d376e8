"""Updates in: every new message to the intake, and the owner's reactions as they change.

Example::

    handlers = attach(client, intake.message, intake.reaction, reaction="✍")   # before connect()
    detach(client, handlers)                                                  # on shutdown
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loguru import logger
from telethon import TelegramClient, errors, events, functions, utils
from telethon.tl import types

from voicebot.messages import IncomingMessage, Reaction

from .convert import describe, peer_token


def attach(
    client: TelegramClient,
    on_message: Callable[[IncomingMessage], Awaitable[None]],
    on_reaction: Callable[[Reaction], Awaitable[None]] | None = None,
    *,
    reaction: str = "",
) -> list[Callable]:
    """Call ``on_message`` for every new message, and ``on_reaction`` when the reactions on a
    message change (only the owner's ``reaction`` is fetched when Telegram leaves it out);
    returns the handlers (for :func:`detach`).

    Attach before :func:`connect`: updates are dispatched only to handlers present when
    they arrive, and catch-up starts as soon as the client connects (client/updates.py).
    """

    async def on_new(event: events.NewMessage.Event) -> None:
        await on_message(describe(event.message))

    client.add_event_handler(on_new, events.NewMessage())
    handlers: list[Callable] = [on_new]
    if on_reaction is not None:
        # Telethon 1.45 has no event for reactions: the raw update (core.telegram.org/constructor/
        # updateMessageReactions) is all there is. Whether the reactor's other sessions get it is
        # not documented (api/reactions promises it to the author); the same account's reaction
        # was seen to arrive as an edit with edit_hide (LonamiWebs/Telethon#4093), and TDLib and
        # Telegram Desktop read reactions from edited messages too: both are honoured.
        async def on_update(update: types.UpdateMessageReactions) -> None:
            read = await read_reaction(client, update, reaction)
            if read is not None:
                await on_reaction(read)

        async def on_edit(update: types.UpdateEditMessage | types.UpdateEditChannelMessage) -> None:
            read = await read_edit(client, update, reaction)
            if read is not None:
                await on_reaction(read)

        client.add_event_handler(on_update, events.Raw(types.UpdateMessageReactions))
        client.add_event_handler(on_edit, events.Raw((types.UpdateEditMessage, types.UpdateEditChannelMessage)))
        handlers += [on_update, on_edit]
    return handlers


def detach(client: TelegramClient, handlers: list[Callable]) -> None:
    """Stop receiving messages and reactions (used on shutdown, before the last job finishes)."""
    for handler in handlers:
        client.remove_event_handler(handler)


def own_reactions(reactions: types.MessageReactions | None) -> frozenset[str]:
    """The viewer's own emoji among ``reactions``: ``chosen_order`` is set on them
    (core.telegram.org/api/reactions), and ``my`` marks them in ``recent_reactions``
    (constructor/messagePeerReaction: "Whether the reaction was sent by us")."""
    if reactions is None:
        return frozenset()
    chosen = {
        r.reaction.emoticon
        for r in reactions.results
        if r.chosen_order is not None and isinstance(r.reaction, types.ReactionEmoji)
    }
    chosen |= {
        p.reaction.emoticon
        for p in reactions.recent_reactions or []
        if p.my and isinstance(p.reaction, types.ReactionEmoji)
    }
    return frozenset(chosen)


async def read_reaction(
    client: TelegramClient, update: types.UpdateMessageReactions, wanted: str = ""
) -> Reaction | None:
    """The account's own reactions on the message of ``update``.

    A ``min`` update leaves out which reactions are the viewer's ("you can use
    messages.getMessagesReactions to get the full reaction info", constructor/messageReactions;
    TDLib keeps its old chosen reactions on such an update, MessageReactions::update_from).
    When ``wanted`` is among its reactions, the full ones are fetched; otherwise it is dropped.

    Example::

        reaction = await read_reaction(client, update, "✍")   # Reaction(..., mine={'✍'})
    """
    return await _read(client, update.peer, update.msg_id, update.reactions, update, wanted)


async def read_edit(
    client: TelegramClient, update: types.UpdateEditMessage | types.UpdateEditChannelMessage, wanted: str
) -> Reaction | None:
    """The account's own reactions on an edited message, when ``wanted`` is among its
    reactions at all (every other edit, the bot's own included, is no reaction: ``None``)."""
    message = update.message
    if not isinstance(message, types.Message) or message.reactions is None or not wanted:
        return None
    if not any(_emoji(r) == wanted for r in message.reactions.results):
        return None
    return await _read(client, message.peer_id, message.id, message.reactions, update, wanted)


def _emoji(count: types.ReactionCount) -> str | None:
    return count.reaction.emoticon if isinstance(count.reaction, types.ReactionEmoji) else None


async def _read(client: TelegramClient, peer, msg_id: int, reactions, update, wanted: str) -> Reaction | None:
    chat_id = utils.get_peer_id(peer)
    entity = (getattr(update, "_entities", None) or {}).get(chat_id)
    token = peer_token(utils.get_input_peer(entity)) if entity is not None else ""
    if reactions.min:
        if wanted not in {_emoji(r) for r in reactions.results}:
            return None
        try:
            input_peer = await client.get_input_entity(peer)
            full = await client(functions.messages.GetMessagesReactionsRequest(peer=input_peer, id=[msg_id]))
        except (errors.RPCError, ValueError, ConnectionError) as exc:
            logger.warning("cannot read the reactions on message {} in chat {}: {}", msg_id, chat_id, exc)
            return None
        reactions = next(
            (
                u.reactions
                for u in getattr(full, "updates", [])
                if isinstance(u, types.UpdateMessageReactions) and u.msg_id == msg_id
            ),
            None,
        )
        if reactions is None:
            return None
    return Reaction(chat_id=chat_id, message_id=msg_id, mine=own_reactions(reactions), peer=token)
