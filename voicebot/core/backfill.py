"""Catching up on voices that arrived while the bot was down.

Telethon's own catch-up (``catch_up=True``: ``updates.getDifference`` from the state the
session saved) replays most of them as ordinary updates. This is the safety net for the
rest: a difference too long to replay, a session whose saved state was older than the
crash, a voice whose update was acknowledged but never journaled. Whether a message was
already handled is the journal's answer, never a "highest id seen" mark: voices finish out
of order, and one seen live proves nothing about an older one.

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
from voicebot.core.selection import chat_ignored, chat_names
from voicebot.errors import RateLimited, TelegramError
from voicebot.state import State

MAX_PAUSES = 10  # flood waits one catch-up sits through before it gives up


async def backfill(settings: Settings, state: State, chat: Chat, admit: Admission) -> int:
    """Queue the voices of the last ``BACKFILL_HOURS`` that no job exists for; return how many."""
    if not settings.backfill_hours or not any(state.journal.counts().values()):
        return 0  # first start ever: nothing was missed, and old voices are not ours to answer
    since = time.time() - settings.backfill_hours * 3600
    queued = pauses = 0
    try:
        async for dialog in chat.dialogs():
            if dialog.last_date < since:
                if dialog.pinned:
                    continue  # pinned dialogs are ordered by the owner, not by date
                break  # the others come newest first: the rest are older still
            auto = state.chats.get(dialog.chat_id).auto
            if chat_ignored(dialog.kind, chat_names(dialog.chat_id, dialog.username), settings, auto):
                continue
            while True:
                try:
                    messages = await chat.history(dialog.chat_id, since, settings.backfill_per_chat * 5)
                    break
                except RateLimited as exc:
                    pauses += 1
                    if pauses > MAX_PAUSES:
                        raise
                    logger.info("backfill paused {:.0f}s by a flood limit", exc.seconds)
                    await asyncio.sleep(exc.seconds)
            media = [m for m in messages if m.media is not None][: settings.backfill_per_chat]
            for msg in reversed(media):  # oldest first, as they arrived
                if not state.journal.handled(msg.chat_id, msg.message_id):
                    queued += await admit.accept(msg)
    except (TelegramError, ConnectionError) as exc:  # catching up is a bonus: never a reason to stop
        logger.warning("backfill stopped early: {}", exc)
    if queued:
        logger.info("backfill: {} voice(s) that arrived while the bot was down", queued)
    return queued
