"""Looking for the owner's reactions instead of waiting to be told of them.

core.telegram.org/api/reactions promises ``updateMessageReactions`` to a message's author only
and says "Apps should short-poll reactions for visible messages … once every 15-30 seconds"
with ``messages.getMessagesReactions``; TDLib polls in basic groups, supergroups and channels
(``MessagesManager::need_poll_dialog_message_reactions``). The bot sees no screen, so it polls
what it may be asked about: recordings it saw in the last hour that are not answered, in every
chat (the owner may react in a private chat where no update comes either; a poll there costs a
request only while such a recording waits), up to 100 ids a call (TDLib's limit) and 20
calls a round (the chats asked longest ago first), every ``REACTION_POLL_SECONDS``. A flood
wait doubles the pause (up to 16 times) and is always sat out; a clean round resets it.

At start it looks once at the recordings of the last hour in every chat active since: a
reaction given while the bot was down comes in no update it will see (``updateMessageReactions``
has no pts, and Telethon 1.45 drops the pts-carrying edits a difference replays,
``MessageBox.apply_pts_info``). Whatever it finds goes through :meth:`Reactions.honour`, so the
journal keeps it to one answer whichever way the reaction was seen first.

Example::

    poll = ReactionPoll(reactions, chat, journal, interval=45)
    admit = poll.watching(pipeline)   # what Dispatch admits is watched while unanswered
    task = asyncio.create_task(poll.run())
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loguru import logger

from voicebot.core.controls.reactions import Reactions
from voicebot.core.ports import Admission, Chat
from voicebot.errors import RateLimited, TelegramError, Unreachable
from voicebot.messages import IncomingMessage, MediaKind, Sent
from voicebot.state.journal import Journal

WINDOW_S = 3600.0  # a recording is watched this long after it was seen
MAX_WATCHED = 500  # the oldest are dropped past this: a poll stays a few requests
BATCH = 100  # ids per messages.getMessagesReactions (TDLib never asks for more)
MAX_BACKOFF = 16  # × the interval, after flood waits in a row
MAX_REQUESTS = 20  # per round; the chats asked longest ago go first, the rest next round
START_HISTORY = 100  # recordings read per recently active chat at start
RECORDINGS = frozenset(MediaKind)  # a reaction asks for any of them, automatic or not
START_CHATS = 50  # recently active chats read at start


class ReactionPoll:
    """The owner's reactions on recent unanswered recordings, asked for every ``interval`` s."""

    def __init__(
        self,
        reactions: Reactions,
        chat: Chat,
        journal: Journal,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.reactions, self.chat, self.journal, self.interval = reactions, chat, journal, interval
        self._clock = clock
        self._watched: dict[tuple[int, int], tuple[IncomingMessage, float]] = {}
        self._asked: dict[int, float] = {}  # chat id → when it was last asked
        self._quiet_until = 0.0  # time.monotonic() before which nothing is asked (a flood wait)

    def watch(self, msg: IncomingMessage) -> None:
        """Look for the owner's reaction on ``msg`` for the next hour, unless it is answered."""
        key = (msg.chat_id, msg.message_id)
        if not self.reactions.emoji or msg.media is None or key in self._watched or self.journal.handled(*key):
            return
        self._watched[key] = (msg, self._clock())
        while len(self._watched) > MAX_WATCHED:
            del self._watched[next(iter(self._watched))]

    def watching(self, admit: Admission) -> Admission:
        """``admit``, watching each recording it does not answer."""
        return _Watching(admit, self)

    async def run(self) -> None:
        """Look at the last hour once, then poll until cancelled. Nothing at all when reactions are off."""
        if not self.reactions.emoji:
            return
        # The look back may sit through long flood waits on the dialogs: the poll goes on meanwhile.
        recent = asyncio.create_task(self._recent())
        try:
            pause = self.interval
            while True:
                pause = await self._round_then_pause(pause)
                await asyncio.sleep(pause)
        finally:
            recent.cancel()

    async def _round_then_pause(self, pause: float) -> float:
        wait = self._quiet_until - time.monotonic()
        if wait > 0:  # a flood wait the other round met
            return wait
        try:
            await self.round()
            return self.interval
        except RateLimited as exc:
            pause = max(exc.seconds or 0.0, min(pause * 2, self.interval * MAX_BACKOFF))
            self._quiet_until = time.monotonic() + pause
            logger.info("reaction poll paused {:.0f}s by a flood limit", pause)
        except (TelegramError, ConnectionError) as exc:  # offline: the next round asks again
            logger.debug("reaction poll: {}", exc)
        except Exception:  # never the end of the poll
            logger.exception("reaction poll round failed")
        return pause

    async def round(self) -> int:
        """One look at every watched recording; returns how many the owner asked for.
        Raises :class:`RateLimited` (the rest of the round waits for the next one)."""
        now = self._clock()
        for key, (_, seen) in list(self._watched.items()):
            if now - seen > WINDOW_S or self.journal.handled(*key):
                del self._watched[key]
        chats: dict[int, list[IncomingMessage]] = {}
        for msg, _ in self._watched.values():
            chats.setdefault(msg.chat_id, []).append(msg)
        self._asked = {c: t for c, t in self._asked.items() if c in chats}
        asked, requests = 0, 0
        for chat_id in sorted(chats, key=lambda c: self._asked.get(c, 0.0)):
            messages = chats[chat_id]
            for start in range(0, len(messages), BATCH):
                if requests >= MAX_REQUESTS:
                    return asked
                requests += 1
                self._asked[chat_id] = self._clock()
                batch = messages[start : start + BATCH]
                try:
                    mine = await self.chat.reactions(chat_id, [m.message_id for m in batch], batch[0].peer)
                except (RateLimited, Unreachable):
                    raise
                except TelegramError as exc:  # left the chat, or it is gone: nothing to ask there
                    logger.debug("no reactions from chat {}: {}", chat_id, exc)
                    for m in batch:
                        self._watched.pop((m.chat_id, m.message_id), None)
                    continue
                for m in batch:
                    if self.reactions.emoji in mine.get(m.message_id, ()):
                        asked += 1
                        if await self.reactions.honour(m):  # else an update is handling it now
                            self._watched.pop((m.chat_id, m.message_id), None)
        return asked

    async def _recent(self) -> None:
        """Watch the recordings of the last hour in the chats active since, and ask about them."""
        since = time.time() - WINDOW_S
        try:
            read = 0
            async for dialog in self.chat.dialogs():
                if dialog.last_date < since:
                    if dialog.pinned:
                        continue  # pinned dialogs come first, whatever their age
                    break
                if read >= START_CHATS:
                    break
                read += 1
                found = await self.chat.recordings(dialog.chat_id, since, RECORDINGS, START_HISTORY)
                for msg in reversed(found):  # oldest first
                    self.watch(msg)
        except (TelegramError, ConnectionError) as exc:  # a bonus: the poll goes on without it
            logger.warning("could not look for reactions given while the bot was down: {}", exc)
            return
        except Exception:
            logger.exception("could not look for reactions given while the bot was down")
            return
        await self._round_then_pause(self.interval)  # now, not a whole interval later


class _Watching:
    """An :class:`Admission` that hands what it does not answer to the poll."""

    def __init__(self, admit: Admission, poll: ReactionPoll):
        self._admit, self._poll = admit, poll

    async def accept(
        self, msg: IncomingMessage, *, forced: bool = False, placeholder: Sent | None = None, again: bool = False
    ) -> bool:
        answered = await self._admit.accept(msg, forced=forced, placeholder=placeholder, again=again)
        if not answered:
            self._poll.watch(msg)
        return answered
