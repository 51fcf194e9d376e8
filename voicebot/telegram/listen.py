"""``doctor --listen``: which updates tell this session of the owner's reactions, on the real account.

No Telegram page says what the reacting account's *other* sessions receive (docs/telegram.md,
"Reactions", *unverified*). This listens as the bot's session would and prints every update
that carries reactions: ``updateMessageReactions``, or an edit (``updateEditMessage`` /
``updateEditChannelMessage``) whose message has ``reactions``, with the chat's kind. The owner
reacts from the phone meanwhile; what comes (or that nothing comes) settles the row.

Example::

    forms = await listen(client, 60, print)   # {("private", "updateEditMessage"): 1, ...}
    await doctor_listen(settings, 60, print)  # connects, listens, prints a summary
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from telethon import TelegramClient, events, utils
from telethon.tl import types

from voicebot.config import Settings

from .client import connect, make_client
from .updates import own_reactions

KINDS = ("private", "basic group", "supergroup", "channel")


async def listen(client: TelegramClient, seconds: float, say: Callable[[str], object]) -> Counter[tuple[str, str]]:
    """Print each reaction-carrying update for ``seconds`` on a connected ``client``; returns
    how many of each (chat kind, form) came."""
    forms: Counter[tuple[str, str]] = Counter()

    async def on_update(update) -> None:
        if isinstance(update, types.UpdateMessageReactions):
            form, peer, msg_id, reactions, hidden = (
                update.__class__.__name__,
                update.peer,
                update.msg_id,
                update.reactions,
                False,
            )
        elif isinstance(getattr(update, "message", None), types.Message) and update.message.reactions is not None:
            message = update.message
            form, peer, msg_id, reactions, hidden = (
                type(update).__name__,
                message.peer_id,
                message.id,
                message.reactions,
                bool(message.edit_hide),
            )
        else:
            return  # an edit without reactions: a real edit
        form = form[0].lower() + form[1:]
        kind = _kind(peer, getattr(update, "_entities", None) or {})
        forms[(kind, form)] += 1
        mine = " ".join(sorted(own_reactions(reactions))) or "none"
        say(f"{kind}: {form}{' (edit_hide)' if hidden else ''} on message {msg_id}; your reactions: {mine}")

    client.add_event_handler(
        on_update, events.Raw((types.UpdateMessageReactions, types.UpdateEditMessage, types.UpdateEditChannelMessage))
    )
    try:
        await asyncio.sleep(seconds)
    finally:
        client.remove_event_handler(on_update)
    return forms


async def doctor_listen(settings: Settings, seconds: float, say: Callable[[str], object]) -> None:
    """Connect with the bot's session, listen ``seconds``, and ``say`` what came and a summary."""
    client = make_client(settings)
    me = await connect(client)
    emoji = settings.react_to_transcribe or "✍"
    say(
        f"listening {seconds:g} s as {me.first_name or me.id}: react {emoji} from your phone to a message in a "
        "private chat, a basic group, a supergroup and a channel (take it back and give it again to repeat)"
    )
    try:
        forms = await listen(client, seconds, say)
    finally:
        await client.disconnect()
    say("what reached this session (docs/telegram.md, Reactions, lists it as unverified):")
    for line in summary(forms):
        say(f"  {line}")


def summary(forms: Counter[tuple[str, str]]) -> list[str]:
    """One line per chat kind: the forms that came, or that none did."""
    lines = []
    for kind in KINDS:
        came = [f"{form} ×{n}" for (k, form), n in sorted(forms.items()) if k == kind]
        lines.append(f"{kind}: " + (", ".join(came) if came else "nothing (the bot's poll finds reactions here)"))
    return lines


def _kind(peer, entities: dict) -> str:
    if isinstance(peer, types.PeerUser):
        return "private"
    if isinstance(peer, types.PeerChat):
        return "basic group"
    entity = entities.get(utils.get_peer_id(peer))
    return "channel" if getattr(entity, "broadcast", False) else "supergroup"
