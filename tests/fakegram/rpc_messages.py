"""RPC handlers of ``messages.*`` (and ``folders.*``): send, edit, forward, history, dialogs."""

from __future__ import annotations

from typing import Any

from telethon.tl import TLObject, functions, types

from .dialogs import DialogEntry
from .records import ChannelRecord, ChatRecord, FileRecord, Post, RpcFail, peer_key, peer_tl
from .rpc import RpcContext, handles


def _reply_to(reply_to: TLObject | None) -> tuple[int | None, int | None, TLObject | None]:
    if isinstance(reply_to, types.InputReplyToMessage):
        return reply_to.reply_to_msg_id, reply_to.top_msg_id, reply_to.reply_to_peer_id
    return None, None, None


def _date(value: Any) -> int:
    # A 0 date arrives as the epoch datetime, not None.
    return int(value.timestamp()) if value else 0


def media_from_input(ctx: RpcContext, media: TLObject) -> tuple[FileRecord, int | None]:
    """The file an ``InputMedia`` names, and its ``ttl_seconds`` (view-once media)."""
    world, user = ctx.world, ctx.user
    ttl = getattr(media, "ttl_seconds", None)
    if isinstance(media, types.InputMediaUploadedDocument):
        file = world.store_upload(user, media.file, mime_type=media.mime_type, attributes=media.attributes)
    elif isinstance(media, types.InputMediaUploadedPhoto):
        file = world.store_upload(user, media.file, mime_type="image/jpeg", attributes=[], is_photo=True)
    elif isinstance(media, (types.InputMediaDocument, types.InputMediaPhoto)):
        file = world.existing_file(media.id)
    else:
        raise RpcFail(400, f"MEDIA_TYPE_NOT_IMPLEMENTED_{type(media).__name__}")
    return file, ttl


def _send_as(ctx: RpcContext, send_as: TLObject | None) -> ChannelRecord | None:
    if send_as is None:
        return None
    peer = ctx.world.resolve_peer(ctx.user, send_as)
    return peer if isinstance(peer, ChannelRecord) else None


@handles(functions.messages.SendMessageRequest)
def send_message(ctx: RpcContext, request: functions.messages.SendMessageRequest) -> TLObject:
    return _send(ctx, request, None, None, short_result=True)


@handles(functions.messages.SendMediaRequest)
def send_media(ctx: RpcContext, request: functions.messages.SendMediaRequest) -> TLObject:
    return _send(ctx, request, *media_from_input(ctx, request.media))


def _send(
    ctx: RpcContext, request: Any, media: FileRecord | None, ttl: int | None, *, short_result: bool = False
) -> TLObject:
    """sendMessage and sendMedia differ only in the media they carry."""
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    reply_to_id, top_msg_id, reply_peer = _reply_to(request.reply_to)
    return ctx.world.send(
        ctx.user, peer, text=request.message, entities=request.entities, media=media, ttl_seconds=ttl,
        reply_to_id=reply_to_id, top_msg_id=top_msg_id, random_id=request.random_id, origin=ctx.origin,
        send_as=_send_as(ctx, request.send_as), short_result=short_result,
        reply_peer=ctx.world.resolve_peer(ctx.user, reply_peer) if reply_peer is not None else None,
    )  # fmt: skip


@handles(functions.messages.ForwardMessagesRequest)
def forward_messages(ctx: RpcContext, request: functions.messages.ForwardMessagesRequest) -> TLObject:
    world = ctx.world
    return world.forward(
        ctx.user, world.resolve_peer(ctx.user, request.from_peer), list(request.id),
        world.resolve_peer(ctx.user, request.to_peer), random_ids=request.random_id,
        drop_author=bool(request.drop_author), top_msg_id=request.top_msg_id, origin=ctx.origin,
    )  # fmt: skip


@handles(functions.messages.EditMessageRequest)
def edit_message(ctx: RpcContext, request: functions.messages.EditMessageRequest) -> types.Updates:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    media = media_from_input(ctx, request.media)[0] if request.media else None
    return ctx.world.edit(
        ctx.user, peer, request.id, text=request.message, entities=request.entities, media=media, origin=ctx.origin
    )


@handles(functions.messages.DeleteMessagesRequest)
def delete_messages(ctx: RpcContext, request: functions.messages.DeleteMessagesRequest) -> TLObject:
    return ctx.world.delete(ctx.user, request.id, revoke=bool(request.revoke), origin=ctx.origin)


@handles(functions.messages.ReadHistoryRequest)
def read_history(ctx: RpcContext, request: functions.messages.ReadHistoryRequest) -> TLObject:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    if isinstance(peer, ChannelRecord):
        raise RpcFail(400, "PEER_ID_INVALID")  # channels are read with channels.readHistory
    return ctx.world.read_history(ctx.user, peer, request.max_id, origin=ctx.origin)


@handles(functions.messages.SendReactionRequest)
def send_reaction(ctx: RpcContext, request: functions.messages.SendReactionRequest) -> TLObject:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    return ctx.world.react(ctx.user, peer, request.msg_id, request.reaction, origin=ctx.origin)


@handles(functions.messages.GetMessagesReactionsRequest)
def get_messages_reactions(ctx: RpcContext, request: functions.messages.GetMessagesReactionsRequest) -> TLObject:
    """The full reactions of some messages, as updateMessageReactions (:mod:`.reactions`)."""
    return ctx.world.messages_reactions(ctx.user, ctx.world.resolve_peer(ctx.user, request.peer), list(request.id))


@handles(functions.messages.SetTypingRequest)
def set_typing(ctx: RpcContext, request: functions.messages.SetTypingRequest) -> bool:
    ctx.world.typing(ctx.user, ctx.world.resolve_peer(ctx.user, request.peer), request.action)
    return True


def messages_result(ctx: RpcContext, posts: list[Post], *, channel: ChannelRecord | None = None,
                    empty: list[TLObject] = ()) -> TLObject:  # fmt: skip
    """messages.messages, or messages.channelMessages for a channel's messages."""
    world, user = ctx.world, ctx.user
    user_ids: list[int] = [user.id]
    chat_ids: list[int] = []
    for post in posts:
        users, chats = world.post_entities(post)
        user_ids += users
        chat_ids += chats
    users_tl, chats_tl = world.entities_tl(user, user_ids, chat_ids)
    messages = [world.message_tl(p, user.id) for p in posts] + list(empty)
    if channel is not None:
        return types.messages.ChannelMessages(
            pts=channel.pts, count=len(messages), messages=messages, topics=[], chats=chats_tl, users=users_tl
        )
    return types.messages.Messages(messages=messages, topics=[], chats=chats_tl, users=users_tl)


@handles(functions.messages.GetMessagesRequest)
def get_messages(ctx: RpcContext, request: functions.messages.GetMessagesRequest) -> TLObject:
    box = ctx.user.box
    posts: list[Post] = []
    empty: list[TLObject] = []
    for wanted in request.id:
        msg_id = getattr(wanted, "id", 0)
        if isinstance(wanted, types.InputMessageReplyTo) and msg_id in box:
            replied = box[msg_id].reply_to
            msg_id = replied.copies.get(ctx.user.id, 0) if replied else 0
        if msg_id in box:
            posts.append(box[msg_id])
        else:
            empty.append(types.MessageEmpty(id=msg_id, peer_id=None))
    return messages_result(ctx, posts, empty=empty)


def chat_posts(ctx: RpcContext, input_peer: TLObject) -> tuple[list[Post], ChannelRecord | None]:
    """The posts of one chat as ``ctx.user`` sees them, newest first, and its channel if it is one."""
    world, user = ctx.world, ctx.user
    peer = world.resolve_peer(user, input_peer)
    channel = peer if isinstance(peer, ChannelRecord) else None
    if channel is not None:
        world.access_channel(user, channel)
        return [p for _, p in sorted(channel.messages.items(), reverse=True)], channel
    key = peer_key(peer)
    return [p for _, p in sorted(user.box.items(), reverse=True) if p.dialog_key(user.id) == key], None


def page(ctx: RpcContext, posts: list[Post], request: TLObject, limit: int) -> list[Post]:
    """``offset_id``, ``add_offset``, ``limit``, ``max_id``, ``min_id`` over ``posts`` (newest
    first), as every history method reads them (core.telegram.org/api/offsets)."""
    ids = [p.msg_id_for(ctx.user.id) for p in posts]
    start = next((n for n, i in enumerate(ids) if i < request.offset_id), len(ids)) if request.offset_id else 0
    start = max(0, start + request.add_offset)
    return [
        p
        for p, i in zip(posts[start : start + limit], ids[start : start + limit])
        if (not request.max_id or i < request.max_id) and i > request.min_id
    ]


@handles(functions.messages.GetHistoryRequest)
def get_history(ctx: RpcContext, request: functions.messages.GetHistoryRequest) -> TLObject:
    posts, channel = chat_posts(ctx, request.peer)
    offset_ts = _date(request.offset_date)
    if offset_ts:
        posts = [p for p in posts if p.date < offset_ts]
    return messages_result(ctx, page(ctx, posts, request, request.limit), channel=channel)


def dialogs_payload(ctx: RpcContext, entries: list[DialogEntry]) -> dict[str, Any]:
    world, user = ctx.world, ctx.user
    user_ids = [user.id, *(e.key[1] for e in entries if e.key[0] == "user")]
    chat_ids = [e.key[1] for e in entries if e.key[0] != "user"]
    for entry in entries:
        users, chats = world.post_entities(entry.top)
        user_ids += users
        chat_ids += chats
    users_tl, chats_tl = world.entities_tl(user, user_ids, chat_ids)
    return dict(
        dialogs=[world.dialog_tl(user, e) for e in entries],
        messages=[world.message_tl(e.top, user.id) for e in entries],
        chats=chats_tl,
        users=users_tl,
    )


@handles(functions.messages.GetDialogsRequest)
def get_dialogs(ctx: RpcContext, request: functions.messages.GetDialogsRequest) -> TLObject:
    """messages.dialogs when the whole list fits, else messages.dialogsSlice with the total count."""
    world = ctx.world
    offset_peer = None
    if not isinstance(request.offset_peer, types.InputPeerEmpty):
        offset_peer = peer_key(world.resolve_peer(ctx.user, request.offset_peer))
    page, total, complete = world.dialogs_page(
        ctx.user, offset_date=_date(request.offset_date), offset_id=request.offset_id,
        offset_peer=offset_peer, limit=request.limit, exclude_pinned=bool(request.exclude_pinned),
        folder_id=request.folder_id,
    )  # fmt: skip
    if complete:
        return types.messages.Dialogs(**dialogs_payload(ctx, page))
    return types.messages.DialogsSlice(count=total, **dialogs_payload(ctx, page))


@handles(functions.messages.GetPeerDialogsRequest)
def get_peer_dialogs(ctx: RpcContext, request: functions.messages.GetPeerDialogsRequest) -> TLObject:
    world, user = ctx.world, ctx.user
    entries = world.dialog_entries(user)
    keys = [peer_key(world.resolve_peer(user, p.peer)) for p in request.peers if isinstance(p, types.InputDialogPeer)]
    payload = dialogs_payload(ctx, [entries[k] for k in keys if k in entries])
    return types.messages.PeerDialogs(**payload, state=world.state_tl(user))


@handles(functions.messages.ToggleDialogPinRequest)
def toggle_dialog_pin(ctx: RpcContext, request: functions.messages.ToggleDialogPinRequest) -> bool:
    key = peer_key(ctx.world.resolve_peer(ctx.user, request.peer.peer))
    ctx.world.pin_dialog(ctx.user, key, bool(request.pinned))
    return True


@handles(functions.folders.EditPeerFoldersRequest)
def edit_peer_folders(ctx: RpcContext, request: functions.folders.EditPeerFoldersRequest) -> TLObject:
    """Archive (folder 1) or unarchive (folder 0) dialogs (core.telegram.org/api/folders)."""
    world, user = ctx.world, ctx.user
    folder_peers = []
    for folder_peer in request.folder_peers:
        peer = world.resolve_peer(user, folder_peer.peer)
        user.folders[peer_key(peer)] = folder_peer.folder_id
        folder_peers.append(types.FolderPeer(peer=peer_tl(peer_key(peer)), folder_id=folder_peer.folder_id))
    update = world._emit(user, types.UpdateFolderPeers(folder_peers, 0, 0), 1)
    updates = world.updates_tl(user, [update], [user.id])
    world._push(user, updates, ctx.origin)
    return updates


@handles(functions.messages.CreateChatRequest)
def create_chat(ctx: RpcContext, request: functions.messages.CreateChatRequest) -> types.messages.InvitedUsers:
    members = [ctx.world.resolve_user(ctx.user, u) for u in request.users]
    _, updates = ctx.world.create_chat(ctx.user, members, request.title, origin=ctx.origin)
    return types.messages.InvitedUsers(updates=updates, missing_invitees=[])


def _chat(ctx: RpcContext, chat_id: int) -> ChatRecord:
    chat = ctx.world.chats.get(chat_id)
    if chat is None or ctx.user.id not in chat.member_ids:
        raise RpcFail(400, "CHAT_ID_INVALID")
    return chat


@handles(functions.messages.GetChatsRequest)
def get_chats(ctx: RpcContext, request: functions.messages.GetChatsRequest) -> types.messages.Chats:
    return types.messages.Chats(chats=[ctx.world.chat_tl(_chat(ctx, i), ctx.user) for i in request.id])


@handles(functions.messages.GetFullChatRequest)
def get_full_chat(ctx: RpcContext, request: functions.messages.GetFullChatRequest) -> types.messages.ChatFull:
    chat = _chat(ctx, request.chat_id)
    participants = [
        types.ChatParticipantCreator(user_id=i)
        if i == chat.creator_id
        else types.ChatParticipant(user_id=i, inviter_id=chat.creator_id, date=chat.date)
        for i in chat.member_ids
    ]
    users_tl, chats_tl = ctx.world.entities_tl(ctx.user, chat.member_ids, [chat.id])
    return types.messages.ChatFull(
        full_chat=types.ChatFull(
            id=chat.id,
            about="",
            notify_settings=types.PeerNotifySettings(),
            participants=types.ChatParticipants(chat_id=chat.id, participants=participants, version=chat.version),
        ),
        chats=chats_tl,
        users=users_tl,
    )
