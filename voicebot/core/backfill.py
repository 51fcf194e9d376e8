"""Catching up on voices that arrived while the bot was down.

Telethon's own catch-up (``catch_up=True``: ``updates.getDifference`` from the state the
session saved) replays most of them as ordinary updates. This is the safety net for the
rest: a difference too long to replay (a channel with more than 100 events meanwhile gets
``channelDifferenceTooLong``, for which Telethon returns no messages), a channel whose pts
Telethon never stored, a session whose saved state was older than the crash, a voice whose
update was acknowledged but never journaled. Whether a message was already handled is the
journal's answer, never a "highest id seen" mark: voices finish out of order, and one seen
live proves nothing about an older one.

It looks back ``BACKFILL_HOURS``, never past the moment the bot began watching the account
(``login``, or the first ``run``: :mod:`voicebot.state.marks`): older voices are not ours to
answer. So it runs on the first start too, and finds a voice pushed to a start that was
killed before it journaled anything. In each chat it asks for the recordings themselves
(``messages.search`` with a media filter and ``min_date``), not the newest messages, so a voice
under a hundred texts is still found.

Dialogs come pinned first, in the owner's order and whatever their age, then newest first
(``messages.getDialogs``; Telethon ``client/dialogs.py``), so an old pinned chat is skipped,
not taken as the end. Only chats whose kind is switched on are read. A flood wait pauses
the catch-up for as long as Telegram asks; it never discards it.

Example::

    queued = await backfill(settings, state, chat, admit=pipeline)   # in the background after start
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger

from voicebot.config import Settings
from voicebot.core.ports import Admission, Chat
from voicebot.core.selection import chat_ignored, chat_names, kind_enabled
from voicebot.errors import RateLimited, TelegramError
from voicebot.messages import MediaKind
from voicebot.state import WATCHING_SINCE, State

MAX_PAUSES = 10  # flood waits one catch-up sits through before it gives up
CLOCK_MARGIN_S = 60  # our clock against Telegram's message dates: a minute early is harmless


async def backfill(
    settings: Settings,
    state: State,
    chat: Chat,
    admit: Admission,
    *,
    since: float | None = None,
    only: int | None = None,
) -> int:
    """Queue the recordings since ``since`` (default: ``BACKFILL_HOURS`` ago) that no job exists
    for, never older than the watch, in every chat or ``only`` in that one; return how many."""
    if not settings.backfill_hours:
        return 0
    since = max(
        time.time() - settings.backfill_hours * 3600 if since is None else since,
        state.marks.keep(WATCHING_SINCE, time.time()) - CLOCK_MARGIN_S,  # unmarked: the watch begins now
    )
    kinds = frozenset(k for k in MediaKind if kind_enabled(k, settings))
    queued = pauses = read = 0
    try:
        async for dialog in chat.dialogs():
            if only is not None and dialog.chat_id != only:
                continue
            if dialog.last_date < since:
                if dialog.pinned:
                    continue  # pinned dialogs are ordered by the owner, not by date
                break  # the others come newest first: the rest are older still
            auto = state.chats.get(dialog.chat_id).auto
            if chat_ignored(dialog.kind, chat_names(dialog.chat_id, dialog.username), settings, auto):
                continue
            while True:
                try:
                    found = await chat.recordings(dialog.chat_id, since, kinds, settings.backfill_per_chat)
                    break
                except RateLimited as exc:
                    pauses += 1
                    if pauses > MAX_PAUSES:
                        raise
                    logger.info("backfill paused {:.0f}s by a flood limit", exc.seconds)
                    await asyncio.sleep(exc.seconds)
            read += 1
            for msg in reversed(found):  # oldest first, as they arrived
                if not state.journal.handled(msg.chat_id, msg.message_id):
                    queued += await admit.accept(msg)
    except (TelegramError, ConnectionError) as exc:  # catching up is a bonus: never a reason to stop
        logger.warning("backfill stopped early: {}", exc)
    if queued:
        logger.info("backfill: {} voice(s) that arrived while the bot was down", queued)
    logger.debug("backfill done: {} chat(s) searched, {:.0f} s back", read, time.time() - since)
    return queued
