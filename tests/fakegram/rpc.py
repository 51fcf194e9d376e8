"""RPC method handlers: Telethon request objects in, TL results out.

Each handler receives an :class:`RpcContext` and the innermost request (``invokeWithLayer``,
``initConnection`` and friends are already unwrapped) and returns a TL object, a ``bool``
or a list. Errors are raised as :class:`~tests.fakegram.world.RpcFail`.
To support a new method, add a function decorated with ``@handles(TheRequest)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telethon.tl import TLObject, functions, types

from .world import (
    CAPTION_LENGTH_MAX,
    DC_ID,
    MESSAGE_LENGTH_MAX,
    ChatRecord,
    FileRecord,
    RpcFail,
    UserRecord,
    World,
    now,
    peer_key,
)

# getFile limits, as documented for upload.getFile.
FILE_CHUNK_ALIGN = 4096
PRECISE_CHUNK_ALIGN = 1024
MAX_FILE_CHUNK = 1024 * 1024


@dataclass
class RpcContext:
    """What a handler may use: the world, the calling user and its connection."""

    world: World
    user: UserRecord
    origin: object  # the calling connection; excluded from the caller's own update pushes
    port: int
    get_file_delay: float


Handler = Callable[[RpcContext, Any], Any | Awaitable[Any]]
HANDLERS: dict[type, Handler] = {}


def handles(*requests: type) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for request in requests:
            HANDLERS[request] = handler
        return handler

    return register


def _reply_to_id(reply_to: TLObject | None) -> int | None:
    return reply_to.reply_to_msg_id if isinstance(reply_to, types.InputReplyToMessage) else None


# region help / updates / users


@handles(functions.help.GetConfigRequest)
def get_config(ctx: RpcContext, request: Any) -> types.Config:
    return types.Config(
        date=now(),
        expires=now() + 3600,
        test_mode=False,
        this_dc=DC_ID,
        dc_options=[types.DcOption(id=DC_ID, ip_address="127.0.0.1", port=ctx.port)],
        dc_txt_domain_name="",
        chat_size_max=200,
        megagroup_size_max=200_000,
        forwarded_count_max=100,
        online_update_period_ms=210_000,
        offline_blur_timeout_ms=5_000,
        offline_idle_timeout_ms=30_000,
        online_cloud_timeout_ms=300_000,
        notify_cloud_delay_ms=30_000,
        notify_default_delay_ms=1_500,
        push_chat_period_ms=60_000,
        push_chat_limit=2,
        edit_time_limit=172_800,
        revoke_time_limit=2_147_483_647,
        revoke_pm_time_limit=2_147_483_647,
        rating_e_decay=2_419_200,
        stickers_recent_limit=200,
        channels_read_media_period=604_800,
        call_receive_timeout_ms=20_000,
        call_ring_timeout_ms=90_000,
        call_connect_timeout_ms=30_000,
        call_packet_timeout_ms=10_000,
        me_url_prefix="https://t.me/",
        caption_length_max=CAPTION_LENGTH_MAX,
        message_length_max=MESSAGE_LENGTH_MAX,
        webfile_dc_id=DC_ID,
    )


@handles(functions.help.GetNearestDcRequest)
def get_nearest_dc(ctx: RpcContext, request: Any) -> types.NearestDc:
    return types.NearestDc(country="ZZ", this_dc=DC_ID, nearest_dc=DC_ID)


@handles(functions.updates.GetStateRequest)
def get_state(ctx: RpcContext, request: Any) -> types.updates.State:
    return ctx.world.state_tl(ctx.user)


@handles(functions.updates.GetDifferenceRequest)
def get_difference(ctx: RpcContext, request: functions.updates.GetDifferenceRequest) -> TLObject:
    return ctx.world.difference(ctx.user, request.pts)


@handles(functions.users.GetUsersRequest)
def get_users(ctx: RpcContext, request: functions.users.GetUsersRequest) -> list[types.User]:
    found = []
    for input_user in request.id:
        try:
            found.append(ctx.world.user_tl(ctx.world.resolve_user(ctx.user, input_user), ctx.user))
        except RpcFail:
            continue  # Telegram silently leaves out users it cannot resolve
    return found


@handles(functions.users.GetFullUserRequest)
def get_full_user(ctx: RpcContext, request: functions.users.GetFullUserRequest) -> types.users.UserFull:
    user = ctx.world.resolve_user(ctx.user, request.id)
    return types.users.UserFull(
        full_user=types.UserFull(
            id=user.id,
            settings=types.PeerSettings(),
            notify_settings=types.PeerNotifySettings(),
            common_chats_count=0,
        ),
        chats=[],
        users=[ctx.world.user_tl(user, ctx.user)],
    )


@handles(functions.contacts.ResolveUsernameRequest)
def resolve_username(ctx: RpcContext, request: functions.contacts.ResolveUsernameRequest) -> TLObject:
    user = ctx.world.user_by_username(request.username)
    if user is None:
        raise RpcFail(400, "USERNAME_NOT_OCCUPIED")
    return types.contacts.ResolvedPeer(
        peer=types.PeerUser(user.id), chats=[], users=[ctx.world.user_tl(user, ctx.user)]
    )


@handles(functions.account.UpdateStatusRequest)
def update_status(ctx: RpcContext, request: Any) -> bool:
    return True


# endregion

# region messages


def _media_from_input(ctx: RpcContext, media: TLObject) -> FileRecord:
    world, user = ctx.world, ctx.user
    if isinstance(media, types.InputMediaUploadedDocument):
        return world.store_upload(user, media.file, mime_type=media.mime_type, attributes=media.attributes)
    if isinstance(media, types.InputMediaUploadedPhoto):
        return world.store_upload(user, media.file, mime_type="image/jpeg", attributes=[], is_photo=True)
    if isinstance(media, (types.InputMediaDocument, types.InputMediaPhoto)):
        return world.existing_file(media.id)
    raise RpcFail(400, f"MEDIA_TYPE_NOT_IMPLEMENTED_{type(media).__name__}")


@handles(functions.messages.SendMessageRequest)
def send_message(ctx: RpcContext, request: functions.messages.SendMessageRequest) -> types.Updates:
    return _send(ctx, request, media=None)


@handles(functions.messages.SendMediaRequest)
def send_media(ctx: RpcContext, request: functions.messages.SendMediaRequest) -> types.Updates:
    return _send(ctx, request, media=_media_from_input(ctx, request.media))


def _send(ctx: RpcContext, request: TLObject, *, media: FileRecord | None) -> types.Updates:
    """sendMessage and sendMedia differ only in the media they carry."""
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    return ctx.world.send(
        ctx.user,
        peer,
        text=request.message,
        entities=request.entities,
        media=media,
        reply_to_id=_reply_to_id(request.reply_to),
        random_id=request.random_id,
        origin=ctx.origin,
    )


@handles(functions.messages.EditMessageRequest)
def edit_message(ctx: RpcContext, request: functions.messages.EditMessageRequest) -> types.Updates:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    media = _media_from_input(ctx, request.media) if request.media else None
    return ctx.world.edit(
        ctx.user,
        peer,
        request.id,
        text=request.message,
        entities=request.entities,
        media=media,
        origin=ctx.origin,
    )


@handles(functions.messages.DeleteMessagesRequest)
def delete_messages(ctx: RpcContext, request: functions.messages.DeleteMessagesRequest) -> TLObject:
    return ctx.world.delete(ctx.user, request.id, revoke=bool(request.revoke), origin=ctx.origin)


@handles(functions.messages.ReadHistoryRequest)
def read_history(ctx: RpcContext, request: functions.messages.ReadHistoryRequest) -> TLObject:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    return ctx.world.read_history(ctx.user, peer, request.max_id, origin=ctx.origin)


@handles(functions.messages.SetTypingRequest)
def set_typing(ctx: RpcContext, request: functions.messages.SetTypingRequest) -> bool:
    ctx.world.typing(ctx.user, ctx.world.resolve_peer(ctx.user, request.peer), request.action)
    return True


def _messages_tl(ctx: RpcContext, messages: list[TLObject]) -> types.messages.Messages:
    world, user = ctx.world, ctx.user
    user_ids: list[int] = []
    chat_ids: list[int] = []
    for message in messages:
        post = user.box.get(message.id)
        if post is not None:
            users, chats = world.post_entities(post)
            user_ids += users
            chat_ids += chats
    users_tl, chats_tl = world.entities_tl(user, user_ids, chat_ids)
    return types.messages.Messages(messages=messages, topics=[], chats=chats_tl, users=users_tl)


@handles(functions.messages.GetMessagesRequest)
def get_messages(ctx: RpcContext, request: functions.messages.GetMessagesRequest) -> types.messages.Messages:
    box = ctx.user.box
    result: list[TLObject] = []
    for wanted in request.id:
        msg_id = getattr(wanted, "id", 0)
        if isinstance(wanted, types.InputMessageReplyTo) and msg_id in box:
            replied = box[msg_id].reply_to
            msg_id = replied.copies.get(ctx.user.id, 0) if replied else 0
        post = box.get(msg_id)
        result.append(
            ctx.world.message_tl(post, ctx.user.id) if post else types.MessageEmpty(id=msg_id, peer_id=None)
        )
    return _messages_tl(ctx, result)


@handles(functions.messages.GetHistoryRequest)
def get_history(ctx: RpcContext, request: functions.messages.GetHistoryRequest) -> types.messages.Messages:
    peer = ctx.world.resolve_peer(ctx.user, request.peer)
    ids = [p.copies[ctx.user.id] for p in ctx.world.history(ctx.user, peer)]  # newest first
    # A 0 date arrives as the epoch datetime, not None.
    offset_ts = int(request.offset_date.timestamp()) if request.offset_date else 0
    if offset_ts:
        ids = [i for i in ids if ctx.user.box[i].date < offset_ts]
    start = (
        next((n for n, i in enumerate(ids) if i < request.offset_id), len(ids)) if request.offset_id else 0
    )
    start = max(0, start + request.add_offset)
    window = [
        i
        for i in ids[start : start + request.limit]
        if (not request.max_id or i < request.max_id) and i > request.min_id
    ]
    return _messages_tl(ctx, [ctx.world.message_tl(ctx.user.box[i], ctx.user.id) for i in window])


def _dialogs_payload(ctx: RpcContext, keys: list[tuple[str, int]]) -> dict[str, Any]:
    world, user = ctx.world, ctx.user
    tops = world.dialogs(user)
    dialogs = [world.dialog_tl(user, key, tops[key]) for key in keys if key in tops]
    messages = [world.message_tl(user.box[d.top_message], user.id) for d in dialogs]
    user_ids = [user.id, *(k[1] for k in keys if k[0] == "user")]
    chat_ids = [k[1] for k in keys if k[0] == "chat"]
    users_tl, chats_tl = world.entities_tl(user, user_ids, chat_ids)
    return dict(dialogs=dialogs, messages=messages, chats=chats_tl, users=users_tl)


@handles(functions.messages.GetDialogsRequest)
def get_dialogs(ctx: RpcContext, request: functions.messages.GetDialogsRequest) -> types.messages.Dialogs:
    # Always the complete list: Telethon stops iterating on a non-slice result.
    return types.messages.Dialogs(**_dialogs_payload(ctx, list(ctx.world.dialogs(ctx.user))))


@handles(functions.messages.GetPeerDialogsRequest)
def get_peer_dialogs(
    ctx: RpcContext, request: functions.messages.GetPeerDialogsRequest
) -> types.messages.PeerDialogs:
    world, user = ctx.world, ctx.user
    keys = [
        peer_key(world.resolve_peer(user, p.peer))
        for p in request.peers
        if isinstance(p, types.InputDialogPeer)
    ]
    return types.messages.PeerDialogs(**_dialogs_payload(ctx, keys), state=world.state_tl(user))


@handles(functions.messages.CreateChatRequest)
def create_chat(
    ctx: RpcContext, request: functions.messages.CreateChatRequest
) -> types.messages.InvitedUsers:
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
            participants=types.ChatParticipants(
                chat_id=chat.id, participants=participants, version=chat.version
            ),
        ),
        chats=chats_tl,
        users=users_tl,
    )


# endregion

# region files


@handles(functions.upload.SaveFilePartRequest)
def save_file_part(ctx: RpcContext, request: functions.upload.SaveFilePartRequest) -> bool:
    ctx.world.save_file_part(ctx.user, request.file_id, request.file_part, request.bytes)
    return True


@handles(functions.upload.SaveBigFilePartRequest)
def save_big_file_part(ctx: RpcContext, request: functions.upload.SaveBigFilePartRequest) -> bool:
    if not 0 <= request.file_part < request.file_total_parts:
        raise RpcFail(400, "FILE_PART_INVALID")
    ctx.world.save_file_part(ctx.user, request.file_id, request.file_part, request.bytes)
    return True


@handles(functions.upload.GetFileRequest)
async def get_file(ctx: RpcContext, request: functions.upload.GetFileRequest) -> types.upload.File:
    record = ctx.world.file_for_location(request.location)
    offset, limit = request.offset, request.limit
    # Same constraints as Telegram, so a client asking for odd chunks fails here too.
    align = PRECISE_CHUNK_ALIGN if request.precise else FILE_CHUNK_ALIGN
    if (
        limit <= 0
        or limit > MAX_FILE_CHUNK
        or limit % align
        or (not request.precise and MAX_FILE_CHUNK % limit)
    ):
        raise RpcFail(400, "LIMIT_INVALID")
    crosses_megabyte = offset // MAX_FILE_CHUNK != (offset + limit - 1) // MAX_FILE_CHUNK
    if offset < 0 or offset % align or (not request.precise and crosses_megabyte):
        raise RpcFail(400, "OFFSET_INVALID")
    if ctx.get_file_delay:
        await asyncio.sleep(ctx.get_file_delay)
    file_type = types.storage.FileJpeg() if record.is_photo else types.storage.FileUnknown()
    return types.upload.File(type=file_type, mtime=record.date, bytes=record.data[offset : offset + limit])


# endregion
