"""The fake Telegram world: users, basic groups, per-user message boxes, files and pts.

Like real Telegram, private chats and basic groups give every participant an own copy of
each message with an id from that participant's own counter, and every user has one
account-wide ``pts`` sequence (starting at 1, bumped by ``pts_count`` per event) so that
Telethon's ``MessageBox`` accepts the updates without detecting gaps.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from telethon.tl import TLObject, types
from telethon.utils import VALID_USERNAME_RE

USER_ID_BASE = 1_000_000
CHAT_ID_BASE = 5_000
DC_ID = 2
MESSAGE_LENGTH_MAX = 4096
CAPTION_LENGTH_MAX = 1024
UPLOAD_PART_MAX = 512 * 1024
# getDifference answers at most this many events at once (as a DifferenceSlice).
DIFFERENCE_SLICE = 100

# ('user', partner id) for private chats, ('chat', chat id) for basic groups.
DialogKey = tuple[str, int]
# deliver(user_id, updates, exclude_connection): push an ``Updates`` to a user's live sessions.
Deliver = Callable[[int, TLObject, object | None], None]


class RpcFail(Exception):
    """Raised by world/RPC code; answered to the client as ``rpc_error``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def now() -> int:
    return int(time.time())


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class PtsEvent:
    """One entry of a user's update log, replayed by ``updates.getDifference``."""

    pts: int
    pts_count: int
    update: TLObject


@dataclass(eq=False)
class FileRecord:
    """An uploaded document or photo, downloadable through ``upload.getFile``."""

    id: int
    access_hash: int
    file_reference: bytes
    date: int
    mime_type: str
    data: bytes
    attributes: list[TLObject]
    is_photo: bool = False

    def has_attribute(self, kind: type, flag: str) -> bool:
        return any(isinstance(a, kind) and getattr(a, flag) for a in self.attributes)


@dataclass(eq=False)
class Post:
    """One logical message; every participant holds a copy under its own message id."""

    sender_id: int
    date: int
    text: str = ""
    entities: list[TLObject] | None = None
    chat_id: int | None = None  # the basic group, or None for a private chat with...
    recipient_id: int = 0  # ...this user (== sender for Saved Messages)
    media: FileRecord | None = None
    reply_to: Post | None = None
    action: TLObject | None = None  # service message (e.g. chat created)
    edit_date: int | None = None
    copies: dict[int, int] = field(default_factory=dict)  # owner user id -> owner's message id

    def dialog_key(self, owner_id: int) -> DialogKey:
        if self.chat_id is not None:
            return ("chat", self.chat_id)
        return ("user", self.recipient_id if owner_id == self.sender_id else self.sender_id)

    def peer_for(self, owner_id: int) -> TLObject:
        kind, peer_id = self.dialog_key(owner_id)
        return types.PeerChat(peer_id) if kind == "chat" else types.PeerUser(peer_id)


@dataclass(eq=False)
class UserRecord:
    """A user account and its per-user state (message box, pts, read marks)."""

    id: int
    access_hash: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    phone: str | None = None
    bot: bool = False
    pts: int = 1  # Telethon treats pts 0 as "unknown", real accounts start at 1 too
    next_msg_id: int = 1
    box: dict[int, Post] = field(default_factory=dict)
    events: list[PtsEvent] = field(default_factory=list)
    read_inbox: dict[DialogKey, int] = field(default_factory=dict)
    read_outbox: dict[DialogKey, int] = field(default_factory=dict)


@dataclass(eq=False)
class ChatRecord:
    """A basic group."""

    id: int
    title: str
    creator_id: int
    member_ids: list[int]
    date: int
    version: int = 1


Peer = UserRecord | ChatRecord


def peer_key(peer: Peer) -> DialogKey:
    """The key of the dialog with ``peer`` (seen from anyone talking to it)."""
    return ("chat", peer.id) if isinstance(peer, ChatRecord) else ("user", peer.id)


class World:
    """All server-side state plus the operations that change it.

    Operations that produce updates bump the affected users' pts and hand an ``Updates``
    to ``deliver`` for each of them; the requesting session gets its copy as the RPC result.
    """

    def __init__(self, deliver: Deliver) -> None:
        self.users: dict[int, UserRecord] = {}
        self.chats: dict[int, ChatRecord] = {}
        self.files: dict[int, FileRecord] = {}
        self._uploads: dict[tuple[int, int], dict[int, bytes]] = {}
        self._deliver = deliver
        self._user_ids = itertools.count(USER_ID_BASE + 1)
        self._chat_ids = itertools.count(CHAT_ID_BASE + 1)
        self._file_ids = itertools.count(7_000_000_001)

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
        if username and not VALID_USERNAME_RE.match(username):
            # Telethon would not even try to resolve such a name (it needs 3+ chars etc.).
            raise ValueError(f"{username!r} is not a valid Telegram username")
        if username and self.user_by_username(username):
            raise ValueError(f"username {username!r} is taken")
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

    def user_by_username(self, username: str) -> UserRecord | None:
        wanted = username.lstrip("@").lower()
        return next((u for u in self.users.values() if (u.username or "").lower() == wanted), None)

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
        raise RpcFail(400, "PEER_ID_INVALID")

    def resolve_user(self, viewer: UserRecord, user: TLObject) -> UserRecord:
        if isinstance(user, types.InputUserSelf):
            return viewer
        if isinstance(user, types.InputUser):
            record = self.users.get(user.user_id)
            if record and (record is viewer or record.access_hash == user.access_hash):
                return record
        elif isinstance(user, types.InputUserFromMessage) and user.user_id in self.users:
            return self.users[user.user_id]
        raise RpcFail(400, "USER_ID_INVALID")

    # endregion

    # region TL views

    def user_tl(self, user: UserRecord, viewer: UserRecord) -> types.User:
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

    def entities_tl(
        self, viewer: UserRecord, user_ids: Iterable[int], chat_ids: Iterable[int] = ()
    ) -> tuple[list[types.User], list[types.Chat]]:
        return (
            [self.user_tl(self.users[i], viewer) for i in dict.fromkeys(user_ids)],
            [self.chat_tl(self.chats[i], viewer) for i in dict.fromkeys(chat_ids)],
        )

    def post_entities(self, post: Post) -> tuple[list[int], list[int]]:
        if post.chat_id is not None:
            return [post.sender_id, *self.chats[post.chat_id].member_ids], [post.chat_id]
        return [post.sender_id, post.recipient_id], []

    def peer_entities(self, peer: Peer) -> tuple[list[int], list[int]]:
        if isinstance(peer, ChatRecord):
            return list(peer.member_ids), [peer.id]
        return [peer.id], []

    def media_tl(self, file: FileRecord) -> TLObject:
        if file.is_photo:
            return types.MessageMediaPhoto(
                photo=types.Photo(
                    id=file.id,
                    access_hash=file.access_hash,
                    file_reference=file.file_reference,
                    date=file.date,
                    dc_id=DC_ID,
                    sizes=[types.PhotoSize(type="x", w=800, h=800, size=len(file.data))],
                )
            )
        round_video = file.has_attribute(types.DocumentAttributeVideo, "round_message")
        return types.MessageMediaDocument(
            document=types.Document(
                id=file.id,
                access_hash=file.access_hash,
                file_reference=file.file_reference,
                date=file.date,
                mime_type=file.mime_type,
                size=len(file.data),
                dc_id=DC_ID,
                attributes=file.attributes,
            ),
            voice=file.has_attribute(types.DocumentAttributeAudio, "voice"),
            round=round_video,
            video=not round_video
            and any(isinstance(a, types.DocumentAttributeVideo) for a in file.attributes),
        )

    def message_tl(self, post: Post, owner_id: int) -> TLObject:
        """The owner's view of a post: own id, peer, ``out`` flag and reply id."""
        out = post.sender_id == owner_id
        # Incoming private messages carry no from_id since layer 119; Telethon infers the sender.
        from_id = types.PeerUser(post.sender_id) if out or post.chat_id is not None else None
        common = dict(
            id=post.copies[owner_id],
            peer_id=post.peer_for(owner_id),
            date=post.date,
            out=out,
            from_id=from_id,
        )
        if post.action is not None:
            return types.MessageService(action=post.action, **common)
        reply_to = None
        if post.reply_to is not None and owner_id in post.reply_to.copies:
            reply_to = types.MessageReplyHeader(reply_to_msg_id=post.reply_to.copies[owner_id])
        return types.Message(
            message=post.text,
            entities=post.entities,
            reply_to=reply_to,
            edit_date=post.edit_date,
            media=self.media_tl(post.media) if post.media else None,
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

    # endregion

    # region pts and delivery

    def _emit(self, owner: UserRecord, update: TLObject, pts_count: int) -> TLObject:
        owner.pts += pts_count
        update.pts, update.pts_count = owner.pts, pts_count
        owner.events.append(PtsEvent(owner.pts, pts_count, update))
        return update

    def _push(self, owner: UserRecord, updates: TLObject, origin: object | None) -> None:
        self._deliver(owner.id, updates, origin)

    def state_tl(self, user: UserRecord) -> types.updates.State:
        return types.updates.State(
            pts=user.pts,
            qts=0,
            date=now(),
            seq=0,
            unread_count=sum(self.unread_count(user, k) for k in self.dialogs(user)),
        )

    def difference(self, user: UserRecord, pts: int) -> TLObject:
        """Everything after ``pts``, as Telegram's ``updates.getDifference`` would return it."""
        pending = [e for e in user.events if e.pts > pts]
        if not pending:
            return types.updates.DifferenceEmpty(date=now(), seq=0)
        chunk = pending[:DIFFERENCE_SLICE]
        new_messages = [e.update.message for e in chunk if isinstance(e.update, types.UpdateNewMessage)]
        other_updates = [e.update for e in chunk if not isinstance(e.update, types.UpdateNewMessage)]
        users, chats = self.entities_tl(
            user, self.users, [c.id for c in self.chats.values() if user.id in c.member_ids]
        )
        if len(pending) > len(chunk):
            return types.updates.DifferenceSlice(
                new_messages=new_messages,
                new_encrypted_messages=[],
                other_updates=other_updates,
                chats=chats,
                users=users,
                intermediate_state=types.updates.State(
                    pts=chunk[-1].pts, qts=0, date=now(), seq=0, unread_count=0
                ),
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

    # region messages

    def _members(self, sender: UserRecord, peer: Peer) -> list[int]:
        if isinstance(peer, ChatRecord):
            if sender.id not in peer.member_ids:
                raise RpcFail(403, "CHAT_WRITE_FORBIDDEN")
            return list(peer.member_ids)
        return [sender.id] if peer is sender else [sender.id, peer.id]

    def _distribute(
        self, post: Post, members: list[int], origin: object | None, random_id: int | None
    ) -> types.Updates:
        """Give every member a copy of ``post``, push it and return the sender's result."""
        for member_id in members:
            owner = self.users[member_id]
            post.copies[member_id] = owner.next_msg_id
            owner.box[owner.next_msg_id] = post
            owner.next_msg_id += 1
        user_ids, chat_ids = self.post_entities(post)
        result = None
        for member_id in members:
            owner = self.users[member_id]
            update = self._emit(owner, types.UpdateNewMessage(self.message_tl(post, member_id), 0, 0), 1)
            is_sender = member_id == post.sender_id
            self._push(
                owner, self.updates_tl(owner, [update], user_ids, chat_ids), origin if is_sender else None
            )
            if is_sender:
                head = (
                    [types.UpdateMessageID(post.copies[member_id], random_id)]
                    if random_id is not None
                    else []
                )
                result = self.updates_tl(owner, [*head, update], user_ids, chat_ids)
        assert result is not None
        return result

    def send(
        self,
        sender: UserRecord,
        peer: Peer,
        *,
        text: str,
        entities: list[TLObject] | None = None,
        media: FileRecord | None = None,
        reply_to_id: int | None = None,
        random_id: int | None = None,
        origin: object | None = None,
    ) -> types.Updates:
        """Send a text or media message from ``sender`` to a user or basic group."""
        if not text and media is None:
            raise RpcFail(400, "MESSAGE_EMPTY")
        _check_length(text, has_media=media is not None)
        members = self._members(sender, peer)
        post = Post(
            sender_id=sender.id,
            date=now(),
            text=text,
            entities=_stored_entities(entities),
            media=media,
            chat_id=peer.id if isinstance(peer, ChatRecord) else None,
            recipient_id=0 if isinstance(peer, ChatRecord) else peer.id,
        )
        replied = sender.box.get(reply_to_id) if reply_to_id else None
        if replied is not None and replied.dialog_key(sender.id) == peer_key(peer):
            post.reply_to = replied
        return self._distribute(post, members, origin, random_id)

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
        )
        return chat, self._distribute(post, member_ids, origin, None)

    def find_post(self, user: UserRecord, peer: Peer, msg_id: int) -> Post:
        post = user.box.get(msg_id)
        if post is None or post.dialog_key(user.id) != peer_key(peer):
            raise RpcFail(400, "MESSAGE_ID_INVALID")
        return post

    def edit(
        self,
        editor: UserRecord,
        peer: Peer,
        msg_id: int,
        *,
        text: str | None,
        entities: list[TLObject] | None,
        media: FileRecord | None,
        origin: object | None = None,
    ) -> types.Updates:
        post = self.find_post(editor, peer, msg_id)
        if post.sender_id != editor.id or post.action is not None:
            raise RpcFail(403, "MESSAGE_AUTHOR_REQUIRED")
        new_text = post.text if text is None else text
        new_entities = post.entities if text is None else _stored_entities(entities)
        if new_text == post.text and new_entities == post.entities and media is None:
            raise RpcFail(400, "MESSAGE_NOT_MODIFIED")
        new_media = media or post.media
        if not new_text and new_media is None:
            raise RpcFail(400, "MESSAGE_EMPTY")
        _check_length(new_text, has_media=new_media is not None)
        post.text, post.entities, post.media, post.edit_date = new_text, new_entities, new_media, now()
        user_ids, chat_ids = self.post_entities(post)
        result = None
        for owner_id in post.copies:
            owner = self.users[owner_id]
            update = self._emit(owner, types.UpdateEditMessage(self.message_tl(post, owner_id), 0, 0), 1)
            self._push(
                owner,
                self.updates_tl(owner, [update], user_ids, chat_ids),
                origin if owner is editor else None,
            )
            if owner is editor:
                result = self.updates_tl(owner, [update], user_ids, chat_ids)
        assert result is not None
        return result

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
                peer=types.PeerChat(peer.id) if key[0] == "chat" else types.PeerUser(peer.id),
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
            if mid <= max_id and sender_id != user.id and sender_id in post.copies:
                if post.copies[sender_id] > outbox_max.get(sender_id, (0, post))[0]:
                    outbox_max[sender_id] = (post.copies[sender_id], post)
        for author_id, (author_max, post) in outbox_max.items():
            author = self.users[author_id]
            author_key = post.dialog_key(author_id)
            if author_max <= author.read_outbox.get(author_key, 0):
                continue
            author.read_outbox[author_key] = author_max
            outbox = self._emit(
                author,
                types.UpdateReadHistoryOutbox(
                    peer=post.peer_for(author_id), max_id=author_max, pts=0, pts_count=0
                ),
                1,
            )
            self._push(author, self.updates_tl(author, [outbox], *self.post_entities(post)), None)
        return types.messages.AffectedMessages(pts=inbox.pts, pts_count=inbox.pts_count)

    def typing(self, user: UserRecord, peer: Peer, action: TLObject) -> None:
        """Show a chat action (typing, recording voice...) to the other participants."""
        if isinstance(peer, ChatRecord):
            update: TLObject = types.UpdateChatUserTyping(peer.id, types.PeerUser(user.id), action)
            targets = [self.users[i] for i in peer.member_ids if i != user.id]
        else:
            update = types.UpdateUserTyping(user_id=user.id, action=action)
            targets = [] if peer is user else [peer]
        for target in targets:
            self._push(target, types.UpdateShort(update=update, date=now()), None)

    def dialogs(self, user: UserRecord) -> dict[DialogKey, int]:
        """Dialog key -> top message id, most recent first."""
        top: dict[DialogKey, int] = {}
        for mid, post in user.box.items():
            key = post.dialog_key(user.id)
            top[key] = max(top.get(key, 0), mid)
        return dict(sorted(top.items(), key=lambda item: -item[1]))

    def unread_count(self, user: UserRecord, key: DialogKey) -> int:
        read = user.read_inbox.get(key, 0)
        return sum(
            1
            for mid, p in user.box.items()
            if mid > read and p.sender_id != user.id and p.dialog_key(user.id) == key
        )

    def dialog_tl(self, user: UserRecord, key: DialogKey, top_message: int) -> types.Dialog:
        return types.Dialog(
            peer=types.PeerChat(key[1]) if key[0] == "chat" else types.PeerUser(key[1]),
            top_message=top_message,
            read_inbox_max_id=user.read_inbox.get(key, 0),
            read_outbox_max_id=user.read_outbox.get(key, 0),
            unread_count=self.unread_count(user, key),
            unread_mentions_count=0,
            unread_reactions_count=0,
            unread_poll_votes_count=0,
            notify_settings=types.PeerNotifySettings(),
        )

    def history(self, user: UserRecord, peer: Peer) -> list[Post]:
        """The user's copies in one dialog, newest first."""
        key = peer_key(peer)
        return [p for mid, p in sorted(user.box.items(), reverse=True) if p.dialog_key(user.id) == key]

    # endregion

    # region files

    def save_file_part(self, user: UserRecord, file_id: int, part: int, data: bytes) -> None:
        if part < 0:
            raise RpcFail(400, "FILE_PART_INVALID")
        if not data:
            raise RpcFail(400, "FILE_PART_EMPTY")
        if len(data) > UPLOAD_PART_MAX:
            raise RpcFail(400, "FILE_PART_SIZE_INVALID")
        self._uploads.setdefault((user.id, file_id), {})[part] = data

    def store_upload(
        self,
        user: UserRecord,
        input_file: TLObject,
        *,
        mime_type: str,
        attributes: list[TLObject],
        is_photo: bool = False,
    ) -> FileRecord:
        """Assemble the parts of an ``InputFile``/``InputFileBig`` into a stored file."""
        if not isinstance(input_file, (types.InputFile, types.InputFileBig)):
            raise RpcFail(400, "FILE_INVALID")
        parts = self._uploads.get((user.id, input_file.id), {})
        for index in range(input_file.parts):
            if index not in parts:
                raise RpcFail(400, f"FILE_PART_{index}_MISSING")
        data = b"".join(parts[i] for i in range(input_file.parts))
        if (
            isinstance(input_file, types.InputFile)
            and input_file.md5_checksum
            and hashlib.md5(data).hexdigest() != input_file.md5_checksum
        ):
            raise RpcFail(400, "MD5_CHECKSUM_INVALID")
        if not any(isinstance(a, types.DocumentAttributeFilename) for a in attributes) and not is_photo:
            attributes = [*attributes, types.DocumentAttributeFilename(input_file.name)]
        return self.add_file(data, mime_type=mime_type, attributes=attributes, is_photo=is_photo)

    def add_file(
        self, data: bytes, *, mime_type: str, attributes: list[TLObject], is_photo: bool = False
    ) -> FileRecord:
        record = FileRecord(
            id=next(self._file_ids),
            access_hash=random.getrandbits(63),
            file_reference=os.urandom(8),
            date=now(),
            mime_type=mime_type,
            data=data,
            attributes=attributes,
            is_photo=is_photo,
        )
        self.files[record.id] = record
        return record

    def existing_file(self, input_file: TLObject) -> FileRecord:
        """An ``InputDocument``/``InputPhoto`` (re-sending a file already on the server)."""
        record = self.files.get(getattr(input_file, "id", 0))
        if record is None or record.access_hash != getattr(input_file, "access_hash", None):
            raise RpcFail(400, "MEDIA_INVALID")
        return record

    def file_for_location(self, location: TLObject) -> FileRecord:
        if isinstance(location, (types.InputDocumentFileLocation, types.InputPhotoFileLocation)):
            record = self.files.get(location.id)
            is_photo = isinstance(location, types.InputPhotoFileLocation)
            # Documents have no thumbnails here, so only the full file (thumb_size '') exists.
            if (
                record
                and record.access_hash == location.access_hash
                and record.is_photo == is_photo
                and (is_photo or not location.thumb_size)
            ):
                return record
        raise RpcFail(400, "LOCATION_INVALID")

    # endregion


def _check_length(text: str, *, has_media: bool) -> None:
    # Telegram measures lengths in UTF-16 code units; captions have a lower limit.
    if has_media and utf16_len(text) > CAPTION_LENGTH_MAX:
        raise RpcFail(400, "MEDIA_CAPTION_TOO_LONG")
    if utf16_len(text) > MESSAGE_LENGTH_MAX:
        raise RpcFail(400, "MESSAGE_TOO_LONG")


def _stored_entities(entities: list[TLObject] | None) -> list[TLObject] | None:
    """Turn client-side entities into what Telegram stores (mention-name needs a plain user id)."""
    if not entities:
        return None
    return [
        types.MessageEntityMentionName(e.offset, e.length, getattr(e.user_id, "user_id", 0))
        if isinstance(e, types.InputMessageEntityMentionName)
        else e
        for e in entities
    ]
