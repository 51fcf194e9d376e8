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
        # updateMessageReactions) is all there is.
        async def on_update(update: types.UpdateMessageReactions) -> None:
            read = await read_reaction(client, update, reaction)
            if read is not None:
                await on_reaction(read)

        client.add_event_handler(on_update, events.Raw(types.UpdateMessageReactions))
        handlers.append(on_update)
    return handlers


def detach(client: TelegramClient, handlers: list[Callable]) -> None:
    """Stop receiving messages and reactions (used on shutdown, before the last job finishes)."""
    for handler in handlers:
        client.remove_event_handler(handler)


def _chosen(reactions: types.MessageReactions) -> frozenset[str]:
    # chosen_order is set on the viewer's own reactions only (core.telegram.org/api/reactions).
    return frozenset(
        r.reaction.emoticon
        for r in reactions.results
        if r.chosen_order is not None and isinstance(r.reaction, types.ReactionEmoji)
    )


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
    chat_id = utils.get_peer_id(update.peer)
    entity = (getattr(update, "_entities", None) or {}).get(chat_id)
    token = peer_token(utils.get_input_peer(entity)) if entity is not None else ""
    reactions = update.reactions
    if reactions.min:
        emoji = {r.reaction.emoticon for r in reactions.results if isinstance(r.reaction, types.ReactionEmoji)}
        if wanted not in emoji:
            return None
        try:
            peer = await client.get_input_entity(update.peer)
            full = await client(functions.messages.GetMessagesReactionsRequest(peer=peer, id=[update.msg_id]))
        except (errors.RPCError, ValueError, ConnectionError) as exc:
            logger.warning("cannot read the reactions on message {} in chat {}: {}", update.msg_id, chat_id, exc)
            return None
        reactions = next(
            (
                u.reactions
                for u in getattr(full, "updates", [])
                if isinstance(u, types.UpdateMessageReactions) and u.msg_id == update.msg_id
            ),
            None,
        )
        if reactions is None:
            return None
    return Reaction(chat_id=chat_id, message_id=update.msg_id, mine=_chosen(reactions), peer=token)
