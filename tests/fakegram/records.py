"""Server-side records of the fake Telegram: users, groups, channels, messages, files.

Plain dataclasses; the behaviour lives in :mod:`.world` and its concern modules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from telethon.tl import TLObject, types

USER_ID_BASE = 1_000_000
CHAT_ID_BASE = 5_000
# Channel ids live in their own (large) range, so a chat id never collides with a channel id.
CHANNEL_ID_BASE = 1_700_000_000
DC_ID = 2  # where every fresh Telethon session starts (telegrambaseclient.py, DEFAULT_DC_ID)
# The fake's data centres: DC 2 and a second one, each its own port (core.telegram.org/api/datacenter).
OTHER_DC_ID = 1
DC_IDS = (DC_ID, OTHER_DC_ID)
MESSAGE_LENGTH_MAX = 4096
CAPTION_LENGTH_MAX = 1024
UPLOAD_PART_MAX = 512 * 1024
# getConfig's edit_time_limit: 48 h (core.telegram.org/constructor/config; TDLib
# MessagesManager::can_edit_message, DEFAULT_EDIT_TIME_LIMIT = 2 * 86400).
EDIT_TIME_LIMIT = 172_800
# getDifference answers at most this many events at once (as a DifferenceSlice).
DIFFERENCE_SLICE = 100
# "General" topic of every forum (core.telegram.org/api/forum#forum-topics).
GENERAL_TOPIC_ID = 1
ARCHIVE_FOLDER_ID = 1

# ('user', partner id) for private chats, ('chat', id) for basic groups, ('channel', id) for
# supergroups and broadcast channels.
DialogKey = tuple[str, int]


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
    """One entry of an update log (a user's, or a channel's), replayed by getDifference.

    Account events hold the TL update; channel events hold ``kind`` and what changed, and
    are rendered per viewer (``out`` differs) when replayed.
    """

    pts: int
    pts_count: int
    update: TLObject | None = None
    kind: str = ""  # channel events: "new", "edit", "delete"
    post: Post | None = None
    ids: list[int] = field(default_factory=list)


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
    dc_id: int = DC_ID  # the DC that stores it; upload.getFile elsewhere is FILE_MIGRATE_X

    def has_attribute(self, kind: type, flag: str | None = None) -> bool:
        return any(isinstance(a, kind) and (flag is None or getattr(a, flag)) for a in self.attributes)

    @property
    def kind(self) -> str:
        """photo, voice, round (video note), audio, video or document."""
        if self.is_photo:
            return "photo"
        if self.has_attribute(types.DocumentAttributeAudio, "voice"):
            return "voice"
        if self.has_attribute(types.DocumentAttributeVideo, "round_message"):
            return "round"
        if self.has_attribute(types.DocumentAttributeAudio):
            return "audio"
        if self.has_attribute(types.DocumentAttributeVideo):
            return "video"
        return "document"


@dataclass(eq=False)
class WebPreview:
    """A link preview (``webPage``), optionally carrying a document (e.g. a video)."""

    url: str
    document: FileRecord | None = None
    title: str = ""
    id: int = 0


@dataclass(eq=False)
class Post:
    """One logical message.

    In private chats and basic groups every participant holds a copy under its own id
    (``copies``); in a channel there is one id (``id``) shared by every member.
    """

    sender_id: int
    date: int
    text: str = ""
    entities: list[TLObject] | None = None
    chat_id: int | None = None  # the basic group...
    channel_id: int | None = None  # ...or the supergroup/channel, or None for a private chat with...
    recipient_id: int = 0  # ...this user (== sender for Saved Messages)
    media: FileRecord | None = None
    ttl_seconds: int | None = None  # view-once media (messageMediaDocument.ttl_seconds)
    web_preview: WebPreview | None = None
    reply_to: Post | None = None
    # The chat of ``reply_to`` when it is another chat (inputReplyToMessage.reply_to_peer_id),
    # as the sender names it.
    reply_peer: DialogKey | None = None
    action: TLObject | None = None  # service message (e.g. chat created)
    edit_date: int | None = None
    fwd_from: TLObject | None = None  # MessageFwdHeader of a forwarded message
    copies: dict[int, int] = field(default_factory=dict)  # owner user id -> owner's message id
    id: int = 0  # channel message id
    seq: int = 0  # global creation order (ties of equal dates)
    is_post: bool = False  # broadcast channel post (message.post)
    from_peer: TLObject | None = None  # sender shown instead of the user (anonymous admin, send_as)
    post_author: str | None = None
    topic_id: int | None = None  # forum topic (top_msg_id), None for "General"
    thread_top: int | None = None  # reply_to_top_id of replies in a thread
    pinned: bool = False
    # messages.sendReaction: user id -> that user's reactions as (emoticon, chosen_order, date).
    reactions: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)

    def dialog_key(self, owner_id: int) -> DialogKey:
        if self.channel_id is not None:
            return ("channel", self.channel_id)
        if self.chat_id is not None:
            return ("chat", self.chat_id)
        return ("user", self.recipient_id if owner_id == self.sender_id else self.sender_id)

    def peer_for(self, owner_id: int) -> TLObject:
        return peer_tl(self.dialog_key(owner_id))

    def msg_id_for(self, owner_id: int) -> int:
        return self.id if self.channel_id is not None else self.copies[owner_id]


def peer_tl(key: DialogKey) -> TLObject:
    kind, peer_id = key
    if kind == "channel":
        return types.PeerChannel(peer_id)
    return types.PeerChat(peer_id) if kind == "chat" else types.PeerUser(peer_id)


@dataclass(eq=False)
class UserRecord:
    """A user account and its per-user state (message box, pts, read marks, dialogs)."""

    id: int
    access_hash: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    phone: str | None = None
    bot: bool = False
    deleted: bool = False
    home_dc: int = DC_ID  # where the account lives: PHONE_MIGRATE_X, auth.loginTokenMigrateTo
    # Limited after spam reports (@SpamBot): may not write in groups and channels.
    spam_limited: bool = False
    pts: int = 1  # Telethon treats pts 0 as "unknown", real accounts start at 1 too
    next_msg_id: int = 1
    box: dict[int, Post] = field(default_factory=dict)
    events: list[PtsEvent] = field(default_factory=list)
    read_inbox: dict[DialogKey, int] = field(default_factory=dict)
    read_outbox: dict[DialogKey, int] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)  # users this user blocked
    contacts: list[int] = field(default_factory=list)  # users in this user's address book, in order
    random_ids: set[int] = field(default_factory=set)  # of the messages this user sent
    pinned: list[DialogKey] = field(default_factory=list)  # newest pin first
    folders: dict[DialogKey, int] = field(default_factory=dict)  # dialog -> folder id (1 = archive)
    # Channel pts already handed to this user (live or by difference): a channel past it gets an
    # updateChannelTooLong in the next getDifference.
    channel_marks: dict[int, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return " ".join(filter(None, [self.first_name, self.last_name]))


@dataclass(eq=False)
class ChatRecord:
    """A basic group."""

    id: int
    title: str
    creator_id: int
    member_ids: list[int]
    date: int
    version: int = 1


@dataclass(eq=False)
class Participant:
    """A user's standing in a channel: creator, admin, member, banned (kicked) or left."""

    user_id: int
    role: str
    date: int
    inviter_id: int = 0
    admin_rights: types.ChatAdminRights | None = None
    banned_rights: types.ChatBannedRights | None = None  # restrictions of a member
    rank: str | None = None  # admin title, shown as post_author when posting anonymously

    @property
    def is_member(self) -> bool:
        return self.role in ("creator", "admin", "member")

    @property
    def is_admin(self) -> bool:
        return self.role in ("creator", "admin")

    def can(self, right: str) -> bool:
        if self.role == "creator" and right != "anonymous":  # anonymity is a choice, not a right
            return True
        return self.role == "admin" and bool(getattr(self.admin_rights, right, False))

    def banned(self, right: str) -> bool:
        return not self.is_admin and bool(getattr(self.banned_rights, right, False))


@dataclass(eq=False)
class Topic:
    id: int
    title: str
    creator_id: int
    date: int
    closed: bool = False


@dataclass(eq=False)
class ChannelRecord:
    """A supergroup (``megagroup``), forum (supergroup with ``forum``) or broadcast channel."""

    id: int
    access_hash: int
    title: str
    creator_id: int
    date: int
    broadcast: bool
    forum: bool = False
    username: str | None = None
    slow_mode: int = 0
    signatures: bool = False
    linked_id: int | None = None  # discussion group of a channel, or channel of a group
    participants: dict[int, Participant] = field(default_factory=dict)
    messages: dict[int, Post] = field(default_factory=dict)
    next_msg_id: int = 1
    pts: int = 1
    events: list[PtsEvent] = field(default_factory=list)
    topics: dict[int, Topic] = field(default_factory=dict)
    last_sent: dict[int, int] = field(default_factory=dict)  # slow mode: user -> date of last message
    read_inbox: dict[int, int] = field(default_factory=dict)  # user -> max read id

    def member(self, user_id: int) -> Participant | None:
        participant = self.participants.get(user_id)
        return participant if participant and participant.is_member else None

    def member_ids(self) -> list[int]:
        return [uid for uid, p in self.participants.items() if p.is_member]


Peer = UserRecord | ChatRecord | ChannelRecord


def peer_key(peer: Peer) -> DialogKey:
    """The key of the dialog with ``peer`` (seen from anyone talking to it)."""
    if isinstance(peer, ChannelRecord):
        return ("channel", peer.id)
    return ("chat", peer.id) if isinstance(peer, ChatRecord) else ("user", peer.id)
