"""Supergroups, forums and broadcast channels (core.telegram.org/api/channel).

A channel has one message id sequence and one ``pts`` shared by all its members; its updates
are ``updateNewChannelMessage``/``updateEditChannelMessage``/``updateDeleteChannelMessages``
and a client that missed some fetches them with ``updates.getChannelDifference``
(core.telegram.org/api/updates). Who may write is decided by the member's role, its
``chatBannedRights``, forum topics and slow mode, each with the error Telegram answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from telethon.tl import TLObject, types

from .records import (
    GENERAL_TOPIC_ID,
    ChannelRecord,
    Participant,
    Post,
    PtsEvent,
    RpcFail,
    Topic,
    UserRecord,
    now,
)

# Rights of an owner (core.telegram.org/constructor/chatAdminRights).
OWNER_RIGHTS = dict(
    change_info=True, post_messages=True, edit_messages=True, delete_messages=True, ban_users=True,
    invite_users=True, pin_messages=True, add_admins=True, manage_call=True, other=True, manage_topics=True,
)  # fmt: skip
# Media kind -> the chatBannedRights flag forbidding it and the error sending it gets
# (core.telegram.org/constructor/chatBannedRights, method/messages.sendMedia errors, all 403).
MEDIA_RIGHTS = {
    "photo": ("send_photos", "CHAT_SEND_PHOTOS_FORBIDDEN"),
    "voice": ("send_voices", "CHAT_SEND_VOICES_FORBIDDEN"),
    "round": ("send_roundvideos", "CHAT_SEND_ROUNDVIDEOS_FORBIDDEN"),
    "audio": ("send_audios", "CHAT_SEND_AUDIOS_FORBIDDEN"),
    "video": ("send_videos", "CHAT_SEND_VIDEOS_FORBIDDEN"),
    "document": ("send_docs", "CHAT_SEND_DOCS_FORBIDDEN"),
}


class Channels:
    users: dict[int, UserRecord]
    channels: dict[int, ChannelRecord]
    _channel_ids: object
    _push: Callable[..., bool]
    message_tl: Callable[..., TLObject]
    updates_tl: Callable[..., types.Updates]
    post_entities: Callable[..., tuple[list[int], list[int]]]
    next_seq: Callable[[], int]
    check_edit: Callable[..., None]
    apply_edit: Callable[..., None]
    _check_username: Callable[[str | None], None]

    def create_channel_record(
        self,
        title: str,
        creator: UserRecord,
        members: list[UserRecord],
        *,
        broadcast: bool,
        forum: bool = False,
        slow_mode: int = 0,
        username: str | None = None,
        signatures: bool = False,
    ) -> ChannelRecord:
        self._check_username(username)
        channel = ChannelRecord(
            id=next(self._channel_ids), access_hash=random.getrandbits(63), title=title,
            creator_id=creator.id, date=now(), broadcast=broadcast, forum=forum and not broadcast,
            username=username, slow_mode=slow_mode, signatures=signatures,
        )  # fmt: skip
        channel.participants[creator.id] = Participant(
            creator.id, "creator", channel.date, admin_rights=types.ChatAdminRights(**OWNER_RIGHTS)
        )
        for member in members:
            channel.participants.setdefault(member.id, Participant(member.id, "member", now(), creator.id))
        self.channels[channel.id] = channel
        self.publish(channel, self._service(channel, creator, types.MessageActionChannelCreate(title=title)))
        return channel

    def _service(self, channel: ChannelRecord, sender: UserRecord, action: TLObject) -> Post:
        return Post(
            sender_id=sender.id, date=now(), channel_id=channel.id, action=action,
            is_post=channel.broadcast, seq=self.next_seq(),
        )  # fmt: skip

    def resolve_channel(self, viewer: UserRecord, channel: TLObject) -> ChannelRecord:
        """An ``InputChannel``/``InputPeerChannel``; anyone holding its access hash may name it."""
        record = self.channels.get(getattr(channel, "channel_id", 0))
        if record is None or record.access_hash != getattr(channel, "access_hash", None):
            raise RpcFail(400, "CHANNEL_INVALID")
        return record

    def access_channel(self, viewer: UserRecord, channel: ChannelRecord) -> Participant | None:
        """Reading a channel: kicked users, and non-members of a private one, get CHANNEL_PRIVATE.

        core.telegram.org/method/messages.sendMessage: 406 CHANNEL_PRIVATE "You haven't joined this
        channel/supergroup"; TDLib ChatManager treats it as "channel forbidden".
        """
        participant = channel.participants.get(viewer.id)
        if participant is not None and participant.role == "banned":
            raise RpcFail(406, "CHANNEL_PRIVATE")
        if (participant is None or not participant.is_member) and channel.username is None:
            raise RpcFail(406, "CHANNEL_PRIVATE")
        return participant if participant and participant.is_member else None

    def find_channel_post(self, user: UserRecord, channel: ChannelRecord, msg_id: int) -> Post:
        self.access_channel(user, channel)
        post = channel.messages.get(msg_id)
        if post is None:
            raise RpcFail(400, "MESSAGE_ID_INVALID")
        return post

    def _check_can_send(self, sender: UserRecord, channel: ChannelRecord, post: Post) -> Participant:
        """The errors of core.telegram.org/method/messages.sendMessage, in the order they apply."""
        participant = self.access_channel(sender, channel)
        if participant is None:
            raise RpcFail(403, "CHAT_WRITE_FORBIDDEN")  # a public chat one has not joined
        if sender.spam_limited and not participant.is_admin:
            raise RpcFail(
                400, "USER_BANNED_IN_CHANNEL"
            )  # "You're banned from sending messages in supergroups/channels"
        if channel.broadcast:
            # Only admins post in a channel; a subscriber's send is refused with CHAT_ADMIN_REQUIRED
            # ("for example, to send a message in a channel which is not yours":
            # Telethon errors.csv; seen from Telegram in github.com/alfem/telegram-download-daemon/issues/69).
            if not participant.can("post_messages"):
                raise RpcFail(403, "CHAT_ADMIN_REQUIRED")
            return participant
        if participant.banned("send_messages"):
            raise RpcFail(403, "CHAT_WRITE_FORBIDDEN")
        if post.media is None:
            if participant.banned("send_plain"):
                raise RpcFail(403, "CHAT_SEND_PLAIN_FORBIDDEN")
        else:
            if participant.banned("send_media"):
                raise RpcFail(403, "CHAT_SEND_MEDIA_FORBIDDEN")
            right, error = MEDIA_RIGHTS[post.media.kind]
            if participant.banned(right):
                raise RpcFail(403, error)
        topic = channel.topics.get(post.topic_id or 0)
        if topic is not None and topic.closed and not participant.can("manage_topics"):
            raise RpcFail(406, "TOPIC_CLOSED")  # "This topic was closed, you can't send messages to it anymore"
        # Slow mode: one message per slow_mode seconds, admins exempt, edits not counted
        # (core.telegram.org/method/channels.toggleSlowMode; TDLib MessagesManager::add_message_to_dialog
        # sets slow_mode_next_send_date only for new messages of non-administrators).
        last = channel.last_sent.get(sender.id)
        if channel.slow_mode and not participant.is_admin and last is not None:
            left = last + channel.slow_mode - now()
            if left > 0:
                raise RpcFail(420, f"SLOWMODE_WAIT_{left}")
        return participant

    def channel_send(
        self,
        sender: UserRecord,
        channel: ChannelRecord,
        post: Post,
        *,
        reply_to_id: int | None,
        top_msg_id: int | None,
        origin: object | None,
        random_id: int | None,
        send_as: ChannelRecord | None = None,
    ) -> types.Updates:
        replied = channel.messages.get(reply_to_id or 0)
        if channel.forum:
            post.topic_id = self._topic_of(channel, replied, reply_to_id, top_msg_id)
        elif replied is not None:
            post.thread_top = replied.thread_top or (replied.reply_to.id if replied.reply_to else None)
        if post.reply_peer is None:  # a reply to another chat was settled by the caller
            post.reply_to = replied
        participant = self._check_can_send(sender, channel, post)
        if channel.broadcast:
            post.is_post = True
            post.post_author = sender.name if channel.signatures else None
        elif send_as is not None:
            # Posting "as" a channel one owns (messages.sendMessage send_as; channels.getSendAs).
            owner = send_as.participants.get(sender.id)
            if send_as is not channel and (owner is None or not owner.is_admin):
                raise RpcFail(400, "SEND_AS_PEER_INVALID")
            post.from_peer = types.PeerChannel(send_as.id)
        elif participant.can("anonymous"):
            # An anonymous admin's messages come from the group itself, signed with the admin's title
            # (core.telegram.org/constructor/chatAdminRights: anonymous; message.post_author).
            post.from_peer = types.PeerChannel(channel.id)
            post.post_author = participant.rank
        result = self.publish(channel, post, origin=origin, random_id=random_id)
        channel.last_sent[sender.id] = now()
        if channel.broadcast and channel.linked_id in self.channels:
            self._autoforward(channel, post)
        return result

    def _topic_of(
        self, channel: ChannelRecord, replied: Post | None, reply_to_id: int | None, top_msg_id: int | None
    ) -> int | None:
        """The forum topic a message lands in (core.telegram.org/api/forum#forum-topics).

        To send to a topic, reply to its id; a reply lands in the topic of the replied message
        (top_msg_id is only the fallback for a replied message deleted meanwhile).
        """
        if replied is not None:
            topic = replied.id if replied.id in channel.topics else replied.topic_id
        else:
            topic = top_msg_id or (reply_to_id if reply_to_id in channel.topics else None)
        if topic in (None, GENERAL_TOPIC_ID):
            return None
        if topic not in channel.topics:
            raise RpcFail(400, "TOPIC_ID_INVALID")
        return topic

    def publish(
        self, channel: ChannelRecord, post: Post, *, origin: object | None = None, random_id: int | None = None
    ) -> types.Updates:
        """Number ``post`` in the channel, log it and push it to every member; the sender's result."""
        post.channel_id, post.id = channel.id, channel.next_msg_id
        channel.next_msg_id += 1
        channel.messages[post.id] = post
        event = self._emit_channel(channel, PtsEvent(0, 1, kind="new", post=post))
        result = None
        for member_id in channel.member_ids():
            viewer = self.users[member_id]
            update = self.channel_update_tl(channel, event, viewer)
            users, chats = self.post_entities(post)
            is_sender = member_id == post.sender_id
            self._push(viewer, self.updates_tl(viewer, [update], users, chats), origin if is_sender else None)
            if is_sender:
                head = [types.UpdateMessageID(post.id, random_id)] if random_id is not None else []
                result = self.updates_tl(viewer, [*head, update], users, chats)
        if result is None:  # e.g. the auto-forward of a post into a group its author is not in
            result = types.Updates(updates=[], users=[], chats=[], date=now(), seq=0)
        return result

    def _emit_channel(self, channel: ChannelRecord, event: PtsEvent) -> PtsEvent:
        channel.pts += event.pts_count
        event.pts = channel.pts
        channel.events.append(event)
        return event

    def channel_update_tl(self, channel: ChannelRecord, event: PtsEvent, viewer: UserRecord) -> TLObject:
        if event.kind == "delete":
            return types.UpdateDeleteChannelMessages(channel.id, event.ids, event.pts, event.pts_count)
        assert event.post is not None
        message = self.message_tl(event.post, viewer.id)
        if event.kind == "edit":
            return types.UpdateEditChannelMessage(message, event.pts, event.pts_count)
        return types.UpdateNewChannelMessage(message, event.pts, event.pts_count)

    def _autoforward(self, channel: ChannelRecord, post: Post) -> None:
        """Every post of a channel is forwarded into its discussion group, sent by the channel and
        pinned there (core.telegram.org/api/discussion); ``saved_from_peer``/``saved_from_msg_id``
        name the post (TDLib messageForwardInfo.source: "forwarded ... to the channel's discussion group").
        """
        group = self.channels[channel.linked_id or 0]
        header = types.MessageFwdHeader(
            date=post.date, from_id=types.PeerChannel(channel.id), channel_post=post.id,
            post_author=post.post_author, saved_from_peer=types.PeerChannel(channel.id), saved_from_msg_id=post.id,
        )  # fmt: skip
        copy = Post(
            sender_id=0, date=post.date, text=post.text, entities=post.entities, media=post.media,
            web_preview=post.web_preview, from_peer=types.PeerChannel(channel.id), fwd_from=header,
            pinned=True, seq=self.next_seq(),
        )  # fmt: skip
        self.publish(group, copy)

    def channel_edit(
        self, editor: UserRecord, channel: ChannelRecord, post: Post, *, text, entities, media, origin
    ) -> types.Updates:
        participant = self.access_channel(editor, channel)
        if participant is None:
            raise RpcFail(403, "CHAT_WRITE_FORBIDDEN")
        if post.is_post:
            # TDLib can_edit_message: channel posts by admins with edit_messages (no time limit),
            # or one's own posts with post_messages.
            can_edit = participant.can("edit_messages")
            if not can_edit and not participant.can("post_messages"):
                raise RpcFail(403, "CHAT_ADMIN_REQUIRED")
            self.check_edit(editor, post, is_saved=False, may_edit_others=can_edit, time_limited=not can_edit)
        else:
            # In groups only one's own messages; admins who may pin are not time-limited.
            self.check_edit(editor, post, is_saved=False, time_limited=not participant.can("pin_messages"))
        self.apply_edit(post, text=text, entities=entities, media=media)
        event = self._emit_channel(channel, PtsEvent(0, 1, kind="edit", post=post))
        users, chats = self.post_entities(post)
        result = None
        for member_id in channel.member_ids():
            viewer = self.users[member_id]
            updates = self.updates_tl(viewer, [self.channel_update_tl(channel, event, viewer)], users, chats)
            self._push(viewer, updates, origin if viewer is editor else None)
            if viewer is editor:
                result = updates
        assert result is not None
        return result

    def channel_delete(
        self, user: UserRecord, channel: ChannelRecord, ids: list[int], origin: object | None = None
    ) -> types.messages.AffectedMessages:
        participant = self.access_channel(user, channel)
        found = [i for i in ids if i in channel.messages]
        for msg_id in found:
            post = channel.messages[msg_id]
            if post.sender_id != user.id and not (participant and participant.can("delete_messages")):
                raise RpcFail(403, "MESSAGE_DELETE_FORBIDDEN")
        if not found:
            return types.messages.AffectedMessages(pts=channel.pts, pts_count=0)
        for msg_id in found:
            del channel.messages[msg_id]
        event = self._emit_channel(channel, PtsEvent(0, len(found), kind="delete", ids=found))
        for member_id in channel.member_ids():
            viewer = self.users[member_id]
            update = self.channel_update_tl(channel, event, viewer)
            self._push(viewer, self.updates_tl(viewer, [update], [], [channel.id]), origin if viewer is user else None)
        return types.messages.AffectedMessages(pts=event.pts, pts_count=event.pts_count)

    def channel_read(self, user: UserRecord, channel: ChannelRecord, max_id: int, origin: object | None) -> bool:
        if self.access_channel(user, channel) is None:
            raise RpcFail(406, "CHANNEL_PRIVATE")
        top = max(channel.messages, default=0)
        max_id = min(max_id or top, top)
        if max_id <= channel.read_inbox.get(user.id, 0):
            return True
        channel.read_inbox[user.id] = max_id
        unread = sum(1 for i, p in channel.messages.items() if i > max_id and p.sender_id != user.id)
        inbox = types.UpdateReadChannelInbox(channel.id, max_id, unread, channel.pts)
        self._push(user, self.updates_tl(user, [inbox], [], [channel.id]), origin)
        for author_id in {p.sender_id for i, p in channel.messages.items() if i <= max_id} - {user.id}:
            if channel.member(author_id):
                author = self.users[author_id]
                outbox = types.UpdateReadChannelOutbox(channel.id, max_id)
                self._push(author, self.updates_tl(author, [outbox], [], [channel.id]), None)
        return True

    def channel_difference(self, user: UserRecord, channel: ChannelRecord, pts: int, limit: int) -> TLObject:
        """updates.getChannelDifference (core.telegram.org/method/updates.getChannelDifference)."""
        self.access_channel(user, channel)
        if pts <= 0:
            raise RpcFail(400, "PERSISTENT_TIMESTAMP_EMPTY")
        if pts > channel.pts:
            raise RpcFail(400, "PERSISTENT_TIMESTAMP_INVALID")
        pending = [e for e in channel.events if e.pts > pts]
        if not pending:
            return types.updates.ChannelDifferenceEmpty(pts=channel.pts, final=True)
        if channel.pts - pts > max(1, limit):
            return self._difference_too_long(user, channel, limit)
        chunk = pending[: max(1, limit)]
        new_messages, other_updates, users = [], [], [user.id]
        for event in chunk:
            if event.kind == "new":
                if event.post is not None and channel.messages.get(event.post.id) is event.post:
                    new_messages.append(self.message_tl(event.post, user.id))
                    users += self.post_entities(event.post)[0]
            else:
                other_updates.append(self.channel_update_tl(channel, event, user))
        users_tl, chats_tl = self.entities_tl(user, users, [channel.id, *filter(None, [channel.linked_id])])
        return types.updates.ChannelDifference(
            pts=chunk[-1].pts, new_messages=new_messages, other_updates=other_updates,
            chats=chats_tl, users=users_tl, final=len(chunk) == len(pending),
        )  # fmt: skip

    def _difference_too_long(self, user: UserRecord, channel: ChannelRecord, limit: int) -> TLObject:
        """More than ``limit`` events to replay: updates.channelDifferenceTooLong, "the provided pts +
        limit < remote pts", with the dialog (its new pts) and "the latest messages" to refill
        from (constructor/updates.channelDifferenceTooLong). How many messages is not documented:
        the fake sends ``limit``'s worth, the newest. Telethon moves the pts on and returns none
        of them (_updates/messagebox.py, apply_channel_difference); TDLib's limit is 100 too."""
        key = ("channel", channel.id)
        entry = self.dialog_entries(user).get(key)
        latest = [p for _, p in sorted(channel.messages.items(), reverse=True)][: max(1, limit)]
        users = [user.id]
        for post in latest:
            users += self.post_entities(post)[0]
        users_tl, chats_tl = self.entities_tl(user, users, [channel.id, *filter(None, [channel.linked_id])])
        return types.updates.ChannelDifferenceTooLong(
            dialog=self.dialog_tl(user, entry), messages=[self.message_tl(p, user.id) for p in latest],
            chats=chats_tl, users=users_tl, final=True,
        )  # fmt: skip

    def create_topic(self, channel: ChannelRecord, title: str, creator: UserRecord) -> int:
        """A forum topic; its id is that of its messageActionTopicCreate (core.telegram.org/api/forum)."""
        if not channel.forum:
            raise RpcFail(400, "CHANNEL_FORUM_MISSING")
        participant = channel.member(creator.id)
        if participant is None:
            raise RpcFail(406, "CHANNEL_PRIVATE")
        post = self._service(channel, creator, types.MessageActionTopicCreate(title=title, icon_color=0x6FB9F0))
        self.publish(channel, post)
        channel.topics[post.id] = Topic(post.id, title, creator.id, post.date)
        return post.id

    def set_topic_closed(self, channel: ChannelRecord, topic_id: int, closed: bool, by: UserRecord) -> None:
        topic = channel.topics.get(topic_id)
        if topic is None:
            raise RpcFail(400, "TOPIC_ID_INVALID")
        topic.closed = closed
        post = self._service(channel, by, types.MessageActionTopicEdit(closed=closed))
        post.topic_id = topic_id
        self.publish(channel, post)
