"""Messages in private chats and basic groups: send, forward, edit, delete, read, typing.

Every rule that makes Telegram refuse something is modelled here with its source, so a
client that does the wrong thing fails against the fake as it would against Telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telethon.tl import TLObject, types

from .records import (
    CAPTION_LENGTH_MAX,
    MESSAGE_LENGTH_MAX,
    ChannelRecord,
    ChatRecord,
    FileRecord,
    Peer,
    Post,
    RpcFail,
    UserRecord,
    WebPreview,
    now,
    peer_key,
    peer_tl,
    utf16_len,
)


class Messaging:
    users: dict[int, UserRecord]
    chats: dict[int, ChatRecord]
    channels: dict[int, ChannelRecord]
    short_updates: bool
    # provided by the other mixins
    _emit: Callable[..., TLObject]
    _push: Callable[..., bool]
    message_tl: Callable[..., TLObject]
    updates_tl: Callable[..., types.Updates]
    post_entities: Callable[..., tuple[list[int], list[int]]]
    peer_entities: Callable[..., tuple[list[int], list[int]]]
    next_seq: Callable[[], int]
    channel_send: Callable[..., types.Updates]
    find_channel_post: Callable[..., Post]

    def send(
        self,
        sender: UserRecord,
        peer: Peer,
        *,
        text: str,
        entities: list[TLObject] | None = None,
        media: FileRecord | None = None,
        ttl_seconds: int | None = None,
        web_preview: WebPreview | None = None,
        reply_to_id: int | None = None,
        top_msg_id: int | None = None,
        random_id: int | None = None,
        origin: object | None = None,
        date: int | None = None,
        fwd_from: TLObject | None = None,
        send_as: ChannelRecord | None = None,
        short_result: bool = False,
        reply_peer: Peer | None = None,
    ) -> TLObject:
        """Send a message from ``sender`` to a user, basic group or channel.

        ``short_result``: answer a private text message with ``updateShortSentMessage``, as
        ``messages.sendMessage`` does (core.telegram.org/constructor/updateShortSentMessage).
        ``reply_peer``: the chat of ``reply_to_id`` when it is another one (a reply to another chat).
        """
        if not text and media is None:
            raise RpcFail(400, "MESSAGE_EMPTY")
        check_length(text, has_media=media is not None)
        # random_id is "unique client message ID required to prevent message resending"
        # (core.telegram.org/method/messages.sendMessage); a second use is refused with
        # 500 RANDOM_ID_DUPLICATE (same page's error list; Telethon's RandomIdDuplicateError).
        if random_id is not None and random_id in sender.random_ids:
            raise RpcFail(500, "RANDOM_ID_DUPLICATE")
        result = self._send(
            sender,
            peer,
            text=text,
            entities=entities,
            media=media,
            ttl_seconds=ttl_seconds,
            web_preview=web_preview,
            reply_to_id=reply_to_id,
            top_msg_id=top_msg_id,
            random_id=random_id,
            origin=origin,
            date=date,
            fwd_from=fwd_from,
            send_as=send_as,
            short_result=short_result,
            reply_peer=reply_peer,
        )
        if random_id is not None:
            sender.random_ids.add(random_id)
        return result

    def _send(
        self,
        sender: UserRecord,
        peer: Peer,
        *,
        text: str,
        entities,
        media,
        ttl_seconds,
        web_preview,
        reply_to_id,
        top_msg_id,
        random_id,
        origin,
        date,
        fwd_from,
        send_as,
        short_result,
        reply_peer,
    ) -> TLObject:
        post = Post(
            sender_id=sender.id,
            date=date or now(),
            text=text,
            entities=stored_entities(entities),
            media=media,
            ttl_seconds=ttl_seconds if media is not None else None,
            web_preview=web_preview if media is None else None,
            fwd_from=fwd_from,
            seq=self.next_seq(),
        )
        if reply_peer is not None and peer_key(reply_peer) != peer_key(peer):
            post.reply_to = self._replied_elsewhere(sender, reply_peer, reply_to_id)
            post.reply_peer = peer_key(reply_peer)
            reply_to_id = None
        if isinstance(peer, ChannelRecord):
            post.channel_id = peer.id
            return self.channel_send(
                sender, peer, post, reply_to_id=reply_to_id, top_msg_id=top_msg_id, origin=origin,
                random_id=random_id, send_as=send_as,
            )  # fmt: skip
        members = self._members(sender, peer)
        if isinstance(peer, ChatRecord):
            post.chat_id = peer.id
        else:
            post.recipient_id = peer.id
        replied = sender.box.get(reply_to_id) if reply_to_id else None
        if replied is not None and replied.dialog_key(sender.id) == peer_key(peer):
            post.reply_to = replied
        return self._distribute(post, members, origin, random_id, short_result=short_result)

    def _replied_elsewhere(self, sender: UserRecord, chat: Peer, msg_id: int | None) -> Post:
        """The message a reply to another chat quotes. "reply_to_peer_id: used to reply to
        messages sent to another chat" (core.telegram.org/constructor/inputReplyToMessage);
        an id that chat does not have is REPLY_MESSAGE_ID_INVALID (messages.sendMessage errors)."""
        if isinstance(chat, ChannelRecord):
            replied = chat.messages.get(msg_id or 0)
        else:
            replied = sender.box.get(msg_id or 0)
            if replied is not None and replied.dialog_key(sender.id) != peer_key(chat):
                replied = None
        if replied is None:
            raise RpcFail(400, "REPLY_MESSAGE_ID_INVALID")
        return replied

    def _members(self, sender: UserRecord, peer: Peer) -> list[int]:
        """Who gets a copy; raises what Telegram raises when the sender may not write here."""
        if isinstance(peer, ChatRecord):
            if sender.id not in peer.member_ids:
                raise RpcFail(403, "CHAT_WRITE_FORBIDDEN")
            return list(peer.member_ids)
        if peer is sender:
            return [sender.id]
        assert isinstance(peer, UserRecord)
        # Errors of core.telegram.org/method/messages.sendMessage:
        # 400 INPUT_USER_DEACTIVATED "The specified user was deleted",
        # 400 YOU_BLOCKED_USER "You blocked this user", 403 USER_IS_BLOCKED "You were blocked by this user".
        if peer.deleted:
            raise RpcFail(400, "INPUT_USER_DEACTIVATED")
        if peer.id in sender.blocked:
            raise RpcFail(400, "YOU_BLOCKED_USER")
        if sender.id in peer.blocked:
            if sender.bot:
                raise RpcFail(403, "USER_IS_BLOCKED")
            # A user (not a bot) is not told: the message stays at one check mark and never arrives
            # (telegram.wiki/general/checks: "If the user blocked you, Telegram stops here").
            return [sender.id]
        return [sender.id, peer.id]

    def _distribute(
        self,
        post: Post,
        members: list[int],
        origin: object | None,
        random_id: int | None,
        *,
        short_result: bool = False,
    ) -> TLObject:
        """Give every member a copy of ``post``, push it and return the sender's result.

        Text messages go out in the short forms Telegram uses for them: ``updateShortMessage``
        in private chats, ``updateShortChatMessage`` in basic groups
        (core.telegram.org/api/updates#update-types); their users are not attached, so a
        client must fetch the sender itself (Telethon: ``message.sender`` is None until
        ``get_sender()``).
        """
        for member_id in members:
            owner = self.users[member_id]
            post.copies[member_id] = owner.next_msg_id
            owner.box[owner.next_msg_id] = post
            owner.next_msg_id += 1
        user_ids, chat_ids = self.post_entities(post)
        short = self.short_updates and post.media is None and post.web_preview is None and post.action is None
        result = None
        for member_id in members:
            owner = self.users[member_id]
            update = self._emit(owner, types.UpdateNewMessage(self.message_tl(post, member_id), 0, 0), 1)
            is_sender = member_id == post.sender_id
            pushed = self._short_tl(post, update) if short else None
            self._push(
                owner,
                pushed or self.updates_tl(owner, [update], user_ids, chat_ids),
                origin if is_sender else None,
            )
            if not is_sender:
                continue
            if short and short_result and post.chat_id is None:
                result = types.UpdateShortSentMessage(
                    id=update.message.id, pts=update.pts, pts_count=1, date=post.date, out=True,
                    entities=post.entities,
                )  # fmt: skip
            else:
                head = [types.UpdateMessageID(update.message.id, random_id)] if random_id is not None else []
                result = self.updates_tl(owner, [*head, update], user_ids, chat_ids)
        assert result is not None
        return result

    def _short_tl(self, post: Post, update: TLObject) -> TLObject:
        message = update.message
        common: dict[str, Any] = dict(
            id=message.id,
            message=post.text,
            pts=update.pts,
            pts_count=update.pts_count,
            date=post.date,
            out=message.out,
            fwd_from=post.fwd_from,
            reply_to=message.reply_to,
            entities=post.entities,
        )
        if post.chat_id is not None:
            return types.UpdateShortChatMessage(from_id=post.sender_id, chat_id=post.chat_id, **common)
        return types.UpdateShortMessage(user_id=message.peer_id.user_id, **common)

    def create_chat(
        self, creator: UserRecord, members: list[UserRecord], title: str, origin: object | None = None
    ) -> tuple[ChatRecord, types.Updates]:
        if not title.strip():
            raise RpcFail(400, "CHAT_TITLE_EMPTY")
        member_ids = list(dict.fromkeys([creator.id, *(m.id for m in members)]))
        chat = ChatRecord(
            id=next(self._chat_ids), title=title, creator_id=creator.id, member_ids=member_ids, date=now()
        )
        self.chats[chat.id] = chat
        post = Post(
            sender_id=creator.id,
            date=now(),
            chat_id=chat.id,
            action=types.MessageActionChatCreate(title=title, users=member_ids),
            seq=self.next_seq(),
        )
        return chat, self._distribute(post, member_ids, origin, None)

    def find_post(self, user: UserRecord, peer: Peer, msg_id: int) -> Post:
        """The message ``msg_id`` of the dialog with ``peer`` as ``user`` numbers it.

        Ids are per dialog kind: a private-chat id names nothing in a channel and vice versa,
        so the wrong (chat, id) pair is MESSAGE_ID_INVALID (core.telegram.org/method/messages.editMessage)
        or, in a channel, whatever message has that id there.
        """
        if isinstance(peer, ChannelRecord):
            return self.find_channel_post(user, peer, msg_id)
        post = user.box.get(msg_id)
        if post is None or post.dialog_key(user.id) != peer_key(peer):
            raise RpcFail(400, "MESSAGE_ID_INVALID")
        return post

    def forward(
        self,
        user: UserRecord,
        source: Peer,
        ids: list[int],
        target: Peer,
        *,
        random_ids: list[int] | None = None,
        drop_author: bool = False,
        top_msg_id: int | None = None,
        origin: object | None = None,
    ) -> types.Updates:
        """messages.forwardMessages: copies with a ``fwd_from`` header (constructor/messageFwdHeader)."""
        if not ids:
            raise RpcFail(400, "MESSAGE_IDS_EMPTY")
        updates: list[TLObject] = []
        users: list[TLObject] = []
        chats: list[TLObject] = []
        for n, msg_id in enumerate(ids):
            original = self.find_post(user, source, msg_id)
            if original.action is not None:
                raise RpcFail(400, "MESSAGE_ID_INVALID")
            header = None if drop_author else self._fwd_header(user, original, source, saved=target is user)
            result = self.send(
                user, target, text=original.text, entities=original.entities, media=original.media,
                web_preview=original.web_preview, top_msg_id=top_msg_id,
                reply_to_id=top_msg_id if isinstance(target, ChannelRecord) else None,
                random_id=random_ids[n] if random_ids and n < len(random_ids) else None,
                origin=origin, fwd_from=header,
            )  # fmt: skip
            updates += result.updates
            users += result.users
            chats += result.chats
        return types.Updates(updates=updates, users=users, chats=chats, date=now(), seq=0)

    def _fwd_header(self, user: UserRecord, original: Post, source: Peer, *, saved: bool) -> TLObject:
        if original.fwd_from is not None:
            header = original.fwd_from  # forwarding a forward keeps the first origin
        elif original.is_post:
            header = types.MessageFwdHeader(
                date=original.date, from_id=types.PeerChannel(original.channel_id),
                channel_post=original.id, post_author=original.post_author,
            )  # fmt: skip
        else:
            header = types.MessageFwdHeader(
                date=original.date, from_id=original.from_peer or types.PeerUser(original.sender_id)
            )
        if saved:
            # saved_from_peer/saved_from_msg_id: only for messages forwarded to Saved Messages
            # (core.telegram.org/constructor/messageFwdHeader).
            header = types.MessageFwdHeader(
                date=header.date, from_id=header.from_id, from_name=header.from_name,
                channel_post=header.channel_post, post_author=header.post_author,
                saved_from_peer=peer_tl(peer_key(source)), saved_from_msg_id=original.msg_id_for(user.id),
            )  # fmt: skip
        return header

    def delete(
        self, user: UserRecord, ids: list[int], *, revoke: bool, origin: object | None = None
    ) -> types.messages.AffectedMessages:
        removed: dict[int, list[int]] = {}
        for msg_id in ids:
            post = user.box.get(msg_id)
            if post is None:
                continue
            # Revoking removes everyone's copy: any side of a private chat, only the author in a group.
            everyone = revoke and (post.chat_id is None or post.sender_id == user.id)
            for owner_id in list(post.copies) if everyone else [user.id]:
                owner_msg_id = post.copies.pop(owner_id)
                del self.users[owner_id].box[owner_msg_id]
                removed.setdefault(owner_id, []).append(owner_msg_id)
        result = types.messages.AffectedMessages(pts=user.pts, pts_count=0)
        for owner_id, msg_ids in removed.items():
            owner = self.users[owner_id]
            update = self._emit(owner, types.UpdateDeleteMessages(msg_ids, 0, 0), len(msg_ids))
            self._push(owner, self.updates_tl(owner, [update], []), origin if owner is user else None)
            if owner is user:
                result = types.messages.AffectedMessages(pts=update.pts, pts_count=update.pts_count)
        return result

    def read_history(
        self, user: UserRecord, peer: Peer, max_id: int, origin: object | None = None
    ) -> types.messages.AffectedMessages:
        """Mark incoming messages up to ``max_id`` (0 = all) read and tell their senders."""
        key = peer_key(peer)
        in_dialog = {mid: p for mid, p in user.box.items() if p.dialog_key(user.id) == key}
        max_id = min(max_id or max(in_dialog, default=0), max(in_dialog, default=0))
        if max_id <= user.read_inbox.get(key, 0):
            return types.messages.AffectedMessages(pts=user.pts, pts_count=0)
        user.read_inbox[key] = max_id
        inbox = self._emit(
            user,
            types.UpdateReadHistoryInbox(
                peer=peer_tl(key),
                max_id=max_id,
                still_unread_count=self.unread_count(user, key),
                pts=0,
                pts_count=0,
            ),
            1,
        )
        self._push(user, self.updates_tl(user, [inbox], *self.peer_entities(peer)), origin)
        # Each author learns the highest of *their own* message ids that is now read.
        outbox_max: dict[int, tuple[int, Post]] = {}
        for mid, post in in_dialog.items():
            sender_id = post.sender_id
            if (
                mid <= max_id
                and sender_id != user.id
                and sender_id in post.copies
                and post.copies[sender_id] > outbox_max.get(sender_id, (0, post))[0]
            ):
                outbox_max[sender_id] = (post.copies[sender_id], post)
        for author_id, (author_max, post) in outbox_max.items():
            author = self.users[author_id]
            author_key = post.dialog_key(author_id)
            if author_max <= author.read_outbox.get(author_key, 0):
                continue
            author.read_outbox[author_key] = author_max
            outbox = self._emit(
                author,
                types.UpdateReadHistoryOutbox(peer=post.peer_for(author_id), max_id=author_max, pts=0, pts_count=0),
                1,
            )
            self._push(author, self.updates_tl(author, [outbox], *self.post_entities(post)), None)
        return types.messages.AffectedMessages(pts=inbox.pts, pts_count=inbox.pts_count)

    def typing(self, user: UserRecord, peer: Peer, action: TLObject) -> None:
        """Show a chat action (typing, recording voice...) to the other participants."""
        if isinstance(peer, ChannelRecord):
            update: TLObject = types.UpdateChannelUserTyping(peer.id, types.PeerUser(user.id), action)
            targets = [self.users[i] for i in peer.member_ids() if i != user.id]
        elif isinstance(peer, ChatRecord):
            update = types.UpdateChatUserTyping(peer.id, types.PeerUser(user.id), action)
            targets = [self.users[i] for i in peer.member_ids if i != user.id]
        else:
            update = types.UpdateUserTyping(user_id=user.id, action=action)
            targets = [] if peer is user or user.id in peer.blocked else [peer]
        for target in targets:
            self._push(target, types.UpdateShort(update=update, date=now()), None)


def check_length(text: str, *, has_media: bool) -> None:
    # Telegram measures lengths in UTF-16 code units; captions have a lower limit.
    if has_media and utf16_len(text) > CAPTION_LENGTH_MAX:
        raise RpcFail(400, "MEDIA_CAPTION_TOO_LONG")
    if utf16_len(text) > MESSAGE_LENGTH_MAX:
        raise RpcFail(400, "MESSAGE_TOO_LONG")


def stored_entities(entities: list[TLObject] | None) -> list[TLObject] | None:
    """Turn client-side entities into what Telegram stores (mention-name needs a plain user id)."""
    if not entities:
        return None
    return [
        types.MessageEntityMentionName(e.offset, e.length, getattr(e.user_id, "user_id", 0))
        if isinstance(e, types.InputMessageEntityMentionName)
        else e
        for e in entities
    ]
