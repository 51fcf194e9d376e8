"""How records look on the wire: TL objects of users, chats, channels, media and messages.

Mixed into :class:`~.world.World`; every method renders for one ``viewer`` (the ``out`` flag,
``is_self``, a channel's ``creator``/``admin_rights`` differ per viewer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from telethon.tl import TLObject, types

from .records import (
    CHANNEL_ID_BASE,
    ChannelRecord,
    ChatRecord,
    FileRecord,
    Post,
    UserRecord,
    WebPreview,
    now,
    peer_tl,
)


class Views:
    users: dict[int, UserRecord]
    chats: dict[int, ChatRecord]
    channels: dict[int, ChannelRecord]
    reactions_tl: Callable[..., TLObject | None]  # .reactions

    def user_tl(self, user: UserRecord, viewer: UserRecord) -> types.User:
        if user.deleted:
            # A deleted account keeps its id and access hash but loses everything else
            # (core.telegram.org/constructor/user: "deleted: Whether the account of this user was deleted").
            return types.User(id=user.id, deleted=True, access_hash=user.access_hash)
        is_self = user is viewer
        return types.User(
            id=user.id,
            is_self=is_self,
            bot=user.bot,
            access_hash=user.access_hash,
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
            phone=user.phone if is_self else None,
            bot_info_version=1 if user.bot else None,
            status=types.UserStatusRecently(),
        )

    def chat_tl(self, chat: ChatRecord, viewer: UserRecord) -> types.Chat:
        return types.Chat(
            id=chat.id,
            title=chat.title,
            photo=types.ChatPhotoEmpty(),
            participants_count=len(chat.member_ids),
            date=chat.date,
            version=chat.version,
            creator=chat.creator_id == viewer.id,
        )

    def channel_tl(self, channel: ChannelRecord, viewer: UserRecord) -> TLObject:
        participant = channel.participants.get(viewer.id)
        if participant is not None and participant.role == "banned":
            # A kicked user sees the channel as channelForbidden (core.telegram.org/constructor/channelForbidden).
            return types.ChannelForbidden(
                id=channel.id,
                access_hash=channel.access_hash,
                title=channel.title,
                broadcast=channel.broadcast,
                megagroup=not channel.broadcast,
            )
        return types.Channel(
            id=channel.id,
            title=channel.title,
            photo=types.ChatPhotoEmpty(),
            date=channel.date,
            creator=channel.creator_id == viewer.id,
            left=participant is None or not participant.is_member,
            broadcast=channel.broadcast,
            megagroup=not channel.broadcast,
            forum=channel.forum,
            signatures=channel.signatures,
            has_link=channel.linked_id is not None,
            slowmode_enabled=bool(channel.slow_mode),
            access_hash=channel.access_hash,
            username=channel.username,
            admin_rights=participant.admin_rights if participant and participant.is_admin else None,
            banned_rights=participant.banned_rights if participant and participant.role == "member" else None,
            participants_count=len(channel.member_ids()),
        )

    def any_chat_tl(self, chat_id: int, viewer: UserRecord) -> TLObject:
        if chat_id >= CHANNEL_ID_BASE:
            return self.channel_tl(self.channels[chat_id], viewer)
        return self.chat_tl(self.chats[chat_id], viewer)

    def entities_tl(
        self, viewer: UserRecord, user_ids: Iterable[int], chat_ids: Iterable[int] = ()
    ) -> tuple[list[types.User], list[TLObject]]:
        """Users and chats (basic groups and channels alike, told apart by their id range)."""
        return (
            [self.user_tl(self.users[i], viewer) for i in dict.fromkeys(user_ids) if i in self.users],
            [self.any_chat_tl(i, viewer) for i in dict.fromkeys(chat_ids)],
        )

    def post_entities(self, post: Post) -> tuple[list[int], list[int]]:
        user_ids = [post.sender_id]
        chat_ids = []
        if post.channel_id is not None:
            channel = self.channels[post.channel_id]
            chat_ids.append(channel.id)
            if channel.linked_id is not None:
                chat_ids.append(channel.linked_id)
        elif post.chat_id is not None:
            user_ids += self.chats[post.chat_id].member_ids
            chat_ids.append(post.chat_id)
        else:
            user_ids.append(post.recipient_id)
        for peer in (post.from_peer, getattr(post.fwd_from, "from_id", None)):
            if isinstance(peer, types.PeerChannel):
                chat_ids.append(peer.channel_id)
            elif isinstance(peer, types.PeerUser):
                user_ids.append(peer.user_id)
        return user_ids, chat_ids

    def peer_entities(self, peer: UserRecord | ChatRecord | ChannelRecord) -> tuple[list[int], list[int]]:
        if isinstance(peer, ChannelRecord):
            return [], [peer.id]
        if isinstance(peer, ChatRecord):
            return list(peer.member_ids), [peer.id]
        return [peer.id], []

    def document_tl(self, file: FileRecord) -> types.Document:
        return types.Document(
            id=file.id,
            access_hash=file.access_hash,
            file_reference=file.file_reference,
            date=file.date,
            mime_type=file.mime_type,
            size=len(file.data),
            dc_id=file.dc_id,
            attributes=file.attributes,
        )

    def media_tl(self, file: FileRecord, ttl_seconds: int | None = None) -> TLObject:
        if file.is_photo:
            return types.MessageMediaPhoto(
                photo=types.Photo(
                    id=file.id,
                    access_hash=file.access_hash,
                    file_reference=file.file_reference,
                    date=file.date,
                    dc_id=file.dc_id,
                    sizes=[types.PhotoSize(type="x", w=800, h=800, size=len(file.data))],
                ),
                ttl_seconds=ttl_seconds,
            )
        kind = file.kind
        # ttl_seconds marks view-once / self-destructing media
        # (core.telegram.org/constructor/messageMediaDocument).
        return types.MessageMediaDocument(
            document=self.document_tl(file),
            voice=kind == "voice",
            round=kind == "round",
            video=kind == "video",
            ttl_seconds=ttl_seconds,
        )

    def web_preview_tl(self, preview: WebPreview) -> types.MessageMediaWebPage:
        # A link preview may carry a document, e.g. the video behind the link
        # (core.telegram.org/constructor/webPage: "document: Preview of the content as a media file").
        return types.MessageMediaWebPage(
            webpage=types.WebPage(
                id=preview.id,
                url=preview.url,
                display_url=preview.url.split("://", 1)[-1],
                hash=0,
                type="video" if preview.document and preview.document.kind == "video" else "article",
                site_name=preview.url.split("://", 1)[-1].split("/", 1)[0],
                title=preview.title or None,
                document=self.document_tl(preview.document) if preview.document else None,
            )
        )

    def reply_header_tl(self, post: Post, owner_id: int) -> types.MessageReplyHeader | None:
        replied = post.reply_to
        if replied is not None and post.reply_peer is not None:
            # A reply to a message in another chat (core.telegram.org/constructor/messageReplyHeader:
            # reply_to_peer_id), numbered as its sender knows it.
            replied_id = replied.id if replied.channel_id is not None else replied.copies.get(post.sender_id, 0)
            return types.MessageReplyHeader(reply_to_msg_id=replied_id, reply_to_peer_id=peer_tl(post.reply_peer))
        if post.topic_id is not None:
            # Forum topics (core.telegram.org/api/forum#forum-topics, constructor/messageReplyHeader):
            # forum_topic is set; a message sent to the topic "replies" to the topic's creation
            # message, a reply inside the topic names the topic in reply_to_top_id.
            if replied is None or replied.id == post.topic_id:
                return types.MessageReplyHeader(forum_topic=True, reply_to_msg_id=post.topic_id)
            return types.MessageReplyHeader(forum_topic=True, reply_to_msg_id=replied.id, reply_to_top_id=post.topic_id)
        if replied is None:
            return None
        if post.channel_id is not None:
            # Threads (core.telegram.org/api/threads): reply_to_top_id is the thread's first message.
            return types.MessageReplyHeader(reply_to_msg_id=replied.id, reply_to_top_id=post.thread_top)
        if owner_id in replied.copies:
            return types.MessageReplyHeader(reply_to_msg_id=replied.copies[owner_id])
        return None

    def from_id_tl(self, post: Post, owner_id: int) -> TLObject | None:
        if post.from_peer is not None:
            return post.from_peer
        if post.is_post:
            return None  # broadcast posts carry no sender (core.telegram.org/constructor/message: post)
        if post.channel_id is not None or post.chat_id is not None or post.sender_id == owner_id:
            return types.PeerUser(post.sender_id)
        # Incoming private messages carry no from_id since layer 119; Telethon infers the sender.
        return None

    def message_tl(self, post: Post, owner_id: int) -> TLObject:
        """The owner's view of a post: its id, peer, ``out`` flag, sender and reply header."""
        common = dict(
            id=post.msg_id_for(owner_id),
            peer_id=post.peer_for(owner_id),
            date=post.date,
            out=post.sender_id == owner_id,
            from_id=self.from_id_tl(post, owner_id),
            post=post.is_post,
        )
        if post.action is not None:
            return types.MessageService(action=post.action, reply_to=self.reply_header_tl(post, owner_id), **common)
        media = None
        if post.media is not None:
            media = self.media_tl(post.media, post.ttl_seconds)
        elif post.web_preview is not None:
            media = self.web_preview_tl(post.web_preview)
        return types.Message(
            message=post.text,
            entities=post.entities,
            reply_to=self.reply_header_tl(post, owner_id),
            fwd_from=post.fwd_from,
            edit_date=post.edit_date,
            media=media,
            views=1 if post.is_post else None,
            forwards=0 if post.is_post else None,
            post_author=post.post_author,
            pinned=post.pinned,
            media_unread=bool(post.ttl_seconds) or None,
            reactions=self.reactions_tl(post, owner_id),
            **common,
        )

    def updates_tl(
        self,
        viewer: UserRecord,
        updates: list[TLObject],
        user_ids: Iterable[int],
        chat_ids: Iterable[int] = (),
    ) -> types.Updates:
        users, chats = self.entities_tl(viewer, user_ids, chat_ids)
        # seq=0: Telethon then skips the seq check, only pts matters.
        return types.Updates(updates=updates, users=users, chats=chats, date=now(), seq=0)
