"""Helpers for tests that drive fakegram with Telethon clients.

Example::

    inbox = collect(bob, events.NewMessage(incoming=True))
    await alice.send_message("bob", "hi")
    assert (await next_event(inbox)).raw_text == "hi"
"""

from __future__ import annotations

import asyncio

from telethon import TelegramClient, events, utils
from telethon.tl import TLObject, types

from .records import ChannelRecord, ChatRecord

EVENT_TIMEOUT_S = 15  # generous: CI machines are shared and noisy


def collect(client: TelegramClient, event: events.common.EventBuilder) -> asyncio.Queue:
    """Queue every event of one kind that ``client`` receives."""
    queue: asyncio.Queue = asyncio.Queue()

    async def handler(ev: events.common.EventCommon) -> None:
        queue.put_nowait(ev)

    client.add_event_handler(handler, event)
    return queue


async def next_event(queue: asyncio.Queue, timeout: float = EVENT_TIMEOUT_S):
    return await asyncio.wait_for(queue.get(), timeout)


async def no_event(queue: asyncio.Queue, wait: float = 0.5) -> bool:
    """True when nothing arrives within ``wait`` seconds (for "must not be delivered")."""
    try:
        await asyncio.wait_for(queue.get(), wait)
    except TimeoutError:
        return True
    return False


async def input_peer(client: TelegramClient, record: ChannelRecord | ChatRecord) -> TLObject:
    """The client's input peer for a group or channel it is in (learnt from its dialogs, as an app would)."""
    await client.get_dialogs()
    if isinstance(record, ChannelRecord):
        return await client.get_input_entity(types.PeerChannel(record.id))
    return await client.get_input_entity(types.PeerChat(record.id))


def marked(record: ChannelRecord | ChatRecord) -> int:
    """The id Telethon gives a group or channel (``event.chat_id``): -id, or -100…id for channels."""
    peer = types.PeerChannel(record.id) if isinstance(record, ChannelRecord) else types.PeerChat(record.id)
    return utils.get_peer_id(peer)
