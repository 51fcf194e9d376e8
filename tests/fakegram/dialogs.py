"""Dialog lists as Telegram orders and pages them (core.telegram.org/method/messages.getDialogs).

Pinned dialogs come first, then the others by the date of their top message, newest first
(Telethon client/dialogs.py: "first pinned, then from those with the most recent message");
``messages.dialogsSlice`` pages through them with ``offset_date``/``offset_id``/``offset_peer``
(core.telegram.org/api/offsets), archived dialogs live in folder 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telethon.tl import TLObject, types

from .records import ChannelRecord, DialogKey, Post, UserRecord, peer_tl


@dataclass
class DialogEntry:
    key: DialogKey
    top: Post
    top_id: int

    @property
    def order(self) -> tuple[int, int]:
        return (self.top.date, self.top.seq)


class Dialogs:
    channels: dict[int, ChannelRecord]
    message_tl: Callable[..., TLObject]

    def dialog_entries(self, user: UserRecord) -> dict[DialogKey, DialogEntry]:
        """Every dialog of ``user`` with its top message."""
        entries: dict[DialogKey, DialogEntry] = {}
        for mid, post in user.box.items():
            key = post.dialog_key(user.id)
            if key not in entries or post.seq > entries[key].top.seq:
                entries[key] = DialogEntry(key, post, mid)
        for channel in self.channels.values():
            if channel.member(user.id) and channel.messages:
                top = max(channel.messages.values(), key=lambda p: p.seq)
                entries[("channel", channel.id)] = DialogEntry(("channel", channel.id), top, top.id)
        return entries

    def dialog_keys(self, user: UserRecord) -> list[DialogKey]:
        return [e.key for e in self.ordered_dialogs(user, folder_id=None)]

    def ordered_dialogs(self, user: UserRecord, *, folder_id: int | None) -> list[DialogEntry]:
        """Pinned (newest pin first), then the rest by top message date, newest first.

        ``folder_id`` None lists every folder (Telethon iter_dialogs: "If left unspecified, all
        dialogs (including those from folders) will be returned").
        """
        entries = self.dialog_entries(user)
        if folder_id is not None:
            entries = {k: e for k, e in entries.items() if user.folders.get(k, 0) == folder_id}
        pinned = [entries[k] for k in user.pinned if k in entries]
        rest = sorted((e for k, e in entries.items() if k not in user.pinned), key=lambda e: e.order, reverse=True)
        return pinned + rest

    def dialogs_page(
        self,
        user: UserRecord,
        *,
        offset_date: int,
        offset_id: int,
        offset_peer: DialogKey | None,
        limit: int,
        exclude_pinned: bool,
        folder_id: int | None,
    ) -> tuple[list[DialogEntry], int, bool]:
        """(page, total count, whether the page is the whole list).

        Pinned dialogs are only on the first page (no offset); the others continue strictly
        after the offset dialog, found by ``offset_peer`` and ``offset_id`` (the way Telethon's
        ``_DialogsIter`` passes the last dialog it got), else by ``offset_date``/``offset_id``.
        """
        ordered = self.ordered_dialogs(user, folder_id=folder_id)
        total = len(ordered)
        has_offset = bool(offset_date or offset_id or offset_peer)
        pinned = [e for e in ordered if e.key in user.pinned]
        rest = [e for e in ordered if e.key not in user.pinned]
        if has_offset:
            cursor = next((e.order for e in rest if e.key == offset_peer and e.top_id == offset_id), None)
            if cursor is not None:
                rest = [e for e in rest if e.order < cursor]
            else:
                rest = [e for e in rest if (e.top.date, e.top_id) < (offset_date, offset_id or 2**31)]
        page = ([] if exclude_pinned or has_offset else pinned) + rest
        limit = max(0, min(limit or 100, 100))  # the method returns at most 100 dialogs
        return page[:limit], total, not has_offset and len(page) <= limit and not exclude_pinned

    def unread_count(self, user: UserRecord, key: DialogKey) -> int:
        if key[0] == "channel":
            channel = self.channels[key[1]]
            read = channel.read_inbox.get(user.id, 0)
            return sum(1 for i, p in channel.messages.items() if i > read and p.sender_id != user.id)
        read = user.read_inbox.get(key, 0)
        return sum(
            1 for mid, p in user.box.items() if mid > read and p.sender_id != user.id and p.dialog_key(user.id) == key
        )

    def dialog_tl(self, user: UserRecord, entry: DialogEntry) -> types.Dialog:
        key = entry.key
        channel = self.channels[key[1]] if key[0] == "channel" else None
        folder = user.folders.get(key, 0)
        return types.Dialog(
            peer=peer_tl(key),
            top_message=entry.top_id,
            read_inbox_max_id=channel.read_inbox.get(user.id, 0) if channel else user.read_inbox.get(key, 0),
            read_outbox_max_id=0 if channel else user.read_outbox.get(key, 0),
            unread_count=self.unread_count(user, key),
            unread_mentions_count=0,
            unread_reactions_count=0,
            unread_poll_votes_count=0,
            notify_settings=types.PeerNotifySettings(),
            pinned=key in user.pinned,
            # A channel dialog carries its pts (Telethon seeds its channel state from it).
            pts=channel.pts if channel else None,
            folder_id=folder or None,
        )

    def pin_dialog(self, user: UserRecord, key: DialogKey, pinned: bool = True) -> None:
        if key in user.pinned:
            user.pinned.remove(key)
        if pinned:
            user.pinned.insert(0, key)  # a newly pinned chat goes to the top
