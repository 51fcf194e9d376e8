"""The reaction poll in memory: what it asks Telegram, how often, and what it admits.

The wire tests (tests/test_reaction_forms.py) show it finds reactions on the fake; these pin
its bounds: 100 ids a request, one chat a request, only unanswered recordings of the last hour,
flood waits sat out, nothing at all when reactions are off.
"""

import asyncio
import time

from voicebot.core.controls.reaction_poll import ReactionPoll
from voicebot.core.controls.reactions import Reactions
from voicebot.errors import RateLimited, TelegramError, Unreachable
from voicebot.messages import ChatKind, Dialog, IncomingMessage, Media, MediaKind
from voicebot.state import State

from .helpers import MemoryChat

GROUP, CLUB = -5001, -1001700000001


class ReactingChat(MemoryChat):
    """MemoryChat that also answers ``reactions`` from ``mine`` and records each request."""

    def __init__(self):
        super().__init__()
        self.mine: dict[tuple[int, int], frozenset[str]] = {}
        self.requests: list[tuple[int, list[int], float]] = []
        self.refuse: list[TelegramError] = []

    async def reactions(self, chat_id, ids, peer=""):
        self.requests.append((chat_id, list(ids), time.monotonic()))
        if self.refuse:
            raise self.refuse.pop(0)
        return {i: self.mine[(chat_id, i)] for i in ids if (chat_id, i) in self.mine}


class Admitted:
    """The pipeline's part: journal it (an answer is on its way)."""

    def __init__(self, journal):
        self.journal, self.accepted = journal, []

    async def accept(self, msg, *, forced=False, placeholder=None, again=False):
        if self.journal.record(msg.chat_id, msg.message_id, None, {}) is None:
            return False
        self.accepted.append((msg.chat_id, msg.message_id, forced))
        return True


def voice(chat_id, message_id, date=None):
    return IncomingMessage(
        chat_id=chat_id, message_id=message_id, chat_kind=ChatKind.GROUP, sender_id=7, outgoing=False,
        media=Media(MediaKind.VOICE, size=1000, duration=2), date=time.time() if date is None else date,
    )  # fmt: skip


def poll_for(tmp_path, emoji="✍", interval=0.05, clock=time.monotonic):
    state = State(tmp_path / "state.db")
    chat = ReactingChat()
    admit = Admitted(state.journal)
    reactions = Reactions(emoji, chat, state.journal, admit=admit)
    return ReactionPoll(reactions, chat, state.journal, interval=interval, clock=clock), chat, admit, state


async def test_a_round_asks_per_chat_at_most_100_ids_and_admits_the_owners_once(tmp_path):
    poll, chat, admit, state = poll_for(tmp_path)
    for i in range(1, 151):
        poll.watch(voice(GROUP, i))
    poll.watch(voice(CLUB, 9))
    state.journal.record(GROUP, 5, None, {})  # answered already (say, by .t)
    chat.mine = {(GROUP, 5): frozenset("✍"), (GROUP, 120): frozenset("✍"), (CLUB, 9): frozenset("👍")}
    assert await poll.round() == 1
    assert [(c, len(ids)) for c, ids, _ in chat.requests] == [(GROUP, 100), (GROUP, 49), (CLUB, 1)]
    assert 5 not in chat.requests[0][1]
    assert admit.accepted == [(GROUP, 120, True)]
    chat.requests.clear()
    assert await poll.round() == 0  # the answered one is not asked about again
    assert all(120 not in ids for _, ids, _ in chat.requests)
    assert admit.accepted == [(GROUP, 120, True)]


async def test_recordings_are_watched_for_an_hour_and_a_closed_chat_is_dropped(tmp_path):
    now = [1000.0]
    poll, chat, _, _ = poll_for(tmp_path, clock=lambda: now[0])
    poll.watch(voice(GROUP, 1))
    poll.watch(voice(CLUB, 1))
    chat.refuse = [TelegramError("CHANNEL_PRIVATE")]  # the first chat asked: we left it
    await poll.round()
    chat.requests.clear()
    await poll.round()
    assert len(chat.requests) == 1
    now[0] += 3601
    chat.requests.clear()
    await poll.round()
    assert chat.requests == []


async def test_a_flood_wait_is_sat_out_before_the_next_request(tmp_path):
    poll, chat, _, _ = poll_for(tmp_path, interval=0.01)
    poll.watch(voice(GROUP, 1))
    chat.refuse = [RateLimited(0.3)]
    task = asyncio.create_task(poll.run())
    try:
        while len(chat.requests) < 3:  # noqa: ASYNC110 (waits for the poll's own rounds)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    (_, _, first), (_, _, second), _ = chat.requests[:3]
    assert second - first >= 0.3


async def test_at_start_it_looks_at_the_last_hours_recordings(tmp_path):
    poll, chat, admit, _ = poll_for(tmp_path, interval=3600)
    old = time.time() - 7200
    chat.dialog_list = [
        Dialog(GROUP, ChatKind.GROUP, None, pinned=False, last_date=time.time()),
        Dialog(CLUB, ChatKind.GROUP, None, pinned=False, last_date=old),  # quiet for 2 h: not read
    ]
    for msg in (voice(GROUP, 1), voice(GROUP, 2, date=old), voice(CLUB, 3, date=old)):
        chat.known[msg.message_id] = msg
    chat.mine = {(GROUP, 1): frozenset("✍"), (GROUP, 2): frozenset("✍"), (CLUB, 3): frozenset("✍")}
    task = asyncio.create_task(poll.run())
    try:
        while not admit.accepted:  # noqa: ASYNC110 (waits for the first round)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert admit.accepted == [(GROUP, 1, True)]
    assert chat.calls.get("recordings") == 1


async def test_nothing_is_asked_when_reactions_are_off(tmp_path):
    poll, chat, _, _ = poll_for(tmp_path, emoji="")
    poll.watch(voice(GROUP, 1))
    await asyncio.wait_for(poll.run(), 5)  # returns at once
    assert chat.requests == [] and chat.calls.get("recordings") is None


async def test_a_round_asks_at_most_20_chats_and_the_rest_go_first_next_time(tmp_path):
    poll, chat, _, _ = poll_for(tmp_path)
    for chat_id in range(-100, -130, -1):
        poll.watch(voice(chat_id, 1))
    await poll.round()
    first = [c for c, _, _ in chat.requests]
    chat.requests.clear()
    await poll.round()
    second = [c for c, _, _ in chat.requests]
    assert len(first) == len(second) == 20
    assert set(first) | set(second) == set(range(-100, -130, -1))  # all 30 within two rounds


async def test_the_poll_outlives_a_lost_connection(tmp_path):
    poll, chat, admit, _ = poll_for(tmp_path, interval=0.01)
    poll.watch(voice(GROUP, 1))
    chat.mine = {(GROUP, 1): frozenset("✍")}
    chat.refuse = [Unreachable("reactions: ConnectionError")]
    task = asyncio.create_task(poll.run())
    try:
        while not admit.accepted:  # noqa: ASYNC110 (waits for a later round)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert admit.accepted == [(GROUP, 1, True)]
