"""The fake Telegram world: who exists, how peers resolve, and the account update log.

Like real Telegram, private chats and basic groups give every participant an own copy of
each message with an id from that participant's own counter, and every user has one
account-wide ``pts`` sequence (starting at 1, bumped by ``pts_count`` per event) so that
Telethon's ``MessageBox`` accepts the updates without detecting gaps. Supergroups and
channels have one message id sequence and one ``pts`` each (:mod:`.channels`).

The behaviour is split by concern into mixins: :mod:`.views` (TL rendering),
:mod:`.messages` (private chats and basic groups), :mod:`.edits`, :mod:`.channels`,
:mod:`.dialogs`, :mod:`.files`, :mod:`.reactions`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from telethon.tl import TLObject, types
from telethon.utils import VALID_USERNAME_RE

from .channels import Channels
from .dialogs import Dialogs
from .edits import Editing
from .files import Files
from .messages import Messaging
from .reactions import Reacting
from .records import (
    CHANNEL_ID_BASE,
    CHAT_ID_BASE,
    DIFFERENCE_SLICE,
    USER_ID_BASE,
    ChannelRecord,
    ChatRecord,
    FileRecord,
    Peer,
    PtsEvent,
    RpcFail,
    UserRecord,
    now,
)
from .views import Views

# deliver(user_id, updates, exclude_connection) -> whether a live session of the user got it.
Deliver = Callable[[int, TLObject, object | None], bool]


class World(Views, Messaging, Editing, Channels, Dialogs, Files, Reacting):
    """All server-side state plus the operations that change it.

    Operations that produce updates bump the affected pts and hand an ``Updates`` to
    ``deliver`` for each user concerned; the requesting session gets its copy as the RPC result.
    """

    def __init__(self, deliver: Deliver) -> None:
        self.users: dict[int, UserRecord] = {}
        self.chats: dict[int, ChatRecord] = {}
        self.channels: dict[int, ChannelRecord] = {}
        self.files: dict[int, FileRecord] = {}
        self._uploads: dict[tuple[int, int], dict[int, bytes]] = {}
        self._deliver = deliver
        self._user_ids = itertools.count(USER_ID_BASE + 1)
        self._chat_ids = itertools.count(CHAT_ID_BASE + 1)
        self._channel_ids = itertools.count(CHANNEL_ID_BASE + 1)
        self._file_ids = itertools.count(7_000_000_001)
        self._seq = itertools.count(1)
        self.short_updates = True
        # The server's own gap limit for updates.getDifference when the client sets none:
        # "if the remote pts is too big (> ~4000000), this field will default to 1000000"
        # (method/updates.getDifference). Tests lower it to make a gap "too big" cheaply.
        self.difference_limit: int | None = None

    def next_seq(self) -> int:
        return next(self._seq)

    # region users and peers

    def create_user(
        self,
        first_name: str,
        username: str | None = None,
        *,
        last_name: str | None = None,
        phone: str | None = None,
        bot: bool = False,
    ) -> UserRecord:
        self._check_username(username)
        user_id = next(self._user_ids)
        user = UserRecord(
            id=user_id,
            access_hash=random.getrandbits(63),
            first_name=first_name,
            last_name=last_name,
            username=username,
            phone=phone or f"999{user_id % 10**7:07d}",
            bot=bot,
        )
        self.users[user.id] = user
        return user

    def _check_username(self, username: str | None) -> None:
        if username and not VALID_USERNAME_RE.match(username):
            # Telethon would not even try to resolve such a name (it needs 3+ chars etc.).
            raise ValueError(f"{username!r} is not a valid Telegram username")
        if username and self.by_username(username):
            raise ValueError(f"username {username!r} is taken")

    def user_by_username(self, username: str) -> UserRecord | None:
        found = self.by_username(username)
        return found if isinstance(found, UserRecord) else None

    def by_username(self, username: str) -> UserRecord | ChannelRecord | None:
        wanted = username.lstrip("@").lower()
        for record in [*self.users.values(), *self.channels.values()]:
            if (record.username or "").lower() == wanted:
                return record
        return None

    def resolve_peer(self, viewer: UserRecord, peer: TLObject) -> Peer:
        """Map an ``InputPeer`` to a record, checking access hashes like Telegram does."""
        if isinstance(peer, types.InputPeerSelf):
            return viewer
        if isinstance(peer, types.InputPeerUser):
            user = self.users.get(peer.user_id)
            if user and (user is viewer or user.access_hash == peer.access_hash):
                return user
        elif isinstance(peer, types.InputPeerUserFromMessage) and peer.user_id in self.users:
            return self.users[peer.user_id]
        elif isinstance(peer, types.InputPeerChat):
            chat = self.chats.get(peer.chat_id)
            if chat and viewer.id in chat.member_ids:
                return chat
        elif isinstance(peer, types.InputPeerChannel):
            return self.resolve_channel(viewer, peer)
        raise RpcFail(400, "PEER_ID_INVALID")

    def resolve_user(self, viewer: UserRecord, user: TLObject) -> UserRecord:
        if isinstance(user, types.InputUserSelf):
            return viewer
        if isinstance(user, (types.InputUser, types.InputPeerUser)):
            record = self.users.get(user.user_id)
            if record and (record is viewer or record.access_hash == user.access_hash):
                return record
        elif isinstance(user, types.InputPeerSelf):
            return viewer
        elif isinstance(user, types.InputUserFromMessage) and user.user_id in self.users:
            return self.users[user.user_id]
        raise RpcFail(400, "USER_ID_INVALID")

    # endregion

    # region pts and delivery

    def _emit(self, owner: UserRecord, update: TLObject, pts_count: int) -> TLObject:
        owner.pts += pts_count
        update.pts, update.pts_count = owner.pts, pts_count
        owner.events.append(PtsEvent(owner.pts, pts_count, update))
        return update

    def _push(self, owner: UserRecord, updates: TLObject, origin: object | None) -> bool:
        return self._deliver(owner.id, updates, origin)

    def state_tl(self, user: UserRecord, marks: dict[int, int] | None = None) -> types.updates.State:
        if marks is not None:
            # A session that (re)starts from this state has every channel update so far.
            marks.update(self._channel_pts(user))
        return types.updates.State(
            pts=user.pts,
            qts=0,
            date=now(),
            seq=0,
            unread_count=sum(self.unread_count(user, k) for k in self.dialog_keys(user)),
        )

    def _channel_pts(self, user: UserRecord) -> dict[int, int]:
        return {c.id: c.pts for c in self.channels.values() if c.member(user.id)}

    def difference(
        self, user: UserRecord, pts: int, marks: dict[int, int] | None = None, pts_total_limit: int | None = None
    ) -> TLObject:
        """Everything after ``pts``, as Telegram's ``updates.getDifference`` would return it.

        Channel messages are not part of the account difference: a channel with news since this
        session last heard of it appears as ``updateChannelTooLong`` in ``other_updates``, and the
        client fetches it with ``updates.getChannelDifference``
        (core.telegram.org/api/updates#recovering-gaps, constructor/updateChannelTooLong).
        """
        limit = pts_total_limit or self.difference_limit
        if limit and user.pts - pts > limit:
            # "pts + pts_total_limit < remote pts": updates.differenceTooLong, "the client should
            # refetch using the new pts" (constructor/updates.differenceTooLong); Telethon takes the
            # pts and returns nothing (_updates/messagebox.py, apply_difference).
            if marks is not None:
                marks.update(self._channel_pts(user))
            return types.updates.DifferenceTooLong(pts=user.pts)
        too_long: list[TLObject] = []
        if marks is not None:
            for channel_id, channel_pts in self._channel_pts(user).items():
                if channel_pts > marks.get(channel_id, 0):
                    too_long.append(types.UpdateChannelTooLong(channel_id=channel_id, pts=channel_pts))
                marks[channel_id] = channel_pts
        pending = [e for e in user.events if e.pts > pts]
        if not pending and not too_long:
            return types.updates.DifferenceEmpty(date=now(), seq=0)
        chunk = pending[:DIFFERENCE_SLICE]
        new_messages = [e.update.message for e in chunk if isinstance(e.update, types.UpdateNewMessage)]
        other_updates = too_long + [e.update for e in chunk if not isinstance(e.update, types.UpdateNewMessage)]
        channel_ids = [c.id for c in self.channels.values() if c.member(user.id)]
        channel_ids += [self.channels[i].linked_id for i in channel_ids if self.channels[i].linked_id]
        users, chats = self.entities_tl(
            user, self.users, [c.id for c in self.chats.values() if user.id in c.member_ids] + channel_ids
        )
        if len(pending) > len(chunk):
            return types.updates.DifferenceSlice(
                new_messages=new_messages,
                new_encrypted_messages=[],
                other_updates=other_updates,
                chats=chats,
                users=users,
                intermediate_state=types.updates.State(pts=chunk[-1].pts, qts=0, date=now(), seq=0, unread_count=0),
            )
        return types.updates.Difference(
            new_messages=new_messages,
            new_encrypted_messages=[],
            other_updates=other_updates,
            chats=chats,
            users=users,
            state=self.state_tl(user),
        )

    # endregion
