"""RPC method handlers: Telethon request objects in, TL results out.

Each handler receives an :class:`RpcContext` and the innermost request (``invokeWithLayer``,
``initConnection`` and friends are already unwrapped) and returns a TL object, a ``bool``
or a list. Errors are raised as :class:`~tests.fakegram.records.RpcFail`.
To support a new method, add a function decorated with ``@handles(SomeRequest)``.

This module holds the registry and the help/updates/users/contacts methods; messages,
channels and files live in :mod:`.rpc_messages`, :mod:`.rpc_channels`, :mod:`.rpc_files`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telethon.tl import TLObject, functions, types

from .records import CAPTION_LENGTH_MAX, DC_ID, EDIT_TIME_LIMIT, MESSAGE_LENGTH_MAX, RpcFail, UserRecord, now
from .world import World

if TYPE_CHECKING:
    from .connection import Authorization
    from .logins import Logins


@dataclass
class RpcContext:
    """What a handler may use: the world, the calling user and its connection.

    ``user`` is None only for the login methods a session may call before it logged in
    (:data:`.rpc_auth.UNAUTHORIZED`); ``auth`` is the calling session's auth key.
    """

    world: World
    user: UserRecord
    origin: object  # the calling connection; excluded from the caller's own update pushes
    port: int
    get_file_delay: float
    # Channel pts this session (auth key) was told about; see World.difference.
    marks: dict[int, int] = field(default_factory=dict)
    auth: Authorization | None = None
    logins: Logins | None = None


Handler = Callable[[RpcContext, Any], Any | Awaitable[Any]]
HANDLERS: dict[type, Handler] = {}


def handles(*requests: type) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for request in requests:
            HANDLERS[request] = handler
        return handler

    return register


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
        edit_time_limit=EDIT_TIME_LIMIT,
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
    return ctx.world.state_tl(ctx.user, ctx.marks)


@handles(functions.updates.GetDifferenceRequest)
def get_difference(ctx: RpcContext, request: functions.updates.GetDifferenceRequest) -> TLObject:
    return ctx.world.difference(ctx.user, request.pts, ctx.marks, request.pts_total_limit)


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
            blocked=user.id in ctx.user.blocked,
        ),
        chats=[],
        users=[ctx.world.user_tl(user, ctx.user)],
    )


@handles(functions.contacts.ResolveUsernameRequest)
def resolve_username(ctx: RpcContext, request: functions.contacts.ResolveUsernameRequest) -> TLObject:
    world = ctx.world
    found = world.by_username(request.username)
    if found is None:
        raise RpcFail(400, "USERNAME_NOT_OCCUPIED")
    if found.id in world.channels:
        return types.contacts.ResolvedPeer(
            peer=types.PeerChannel(found.id), chats=[world.any_chat_tl(found.id, ctx.user)], users=[]
        )
    return types.contacts.ResolvedPeer(peer=types.PeerUser(found.id), chats=[], users=[world.user_tl(found, ctx.user)])


@handles(functions.contacts.GetContactsRequest)
def get_contacts(ctx: RpcContext, request: functions.contacts.GetContactsRequest) -> TLObject:
    """core.telegram.org/method/contacts.getContacts: the address book, ``contacts.contacts``
    (``contacts.contactsNotModified`` when ``hash`` matches, which a hash of 0 never does)."""
    world, user = ctx.world, ctx.user
    ids = [i for i in user.contacts if i in world.users]
    return types.contacts.Contacts(
        contacts=[types.Contact(user_id=i, mutual=user.id in world.users[i].contacts) for i in ids],
        saved_count=0,
        users=[world.user_tl(world.users[i], user) for i in ids],
    )


@handles(functions.contacts.BlockRequest)
def block(ctx: RpcContext, request: functions.contacts.BlockRequest) -> bool:
    blocked = ctx.world.resolve_peer(ctx.user, request.id)
    ctx.user.blocked.add(blocked.id)
    return True


@handles(functions.contacts.UnblockRequest)
def unblock(ctx: RpcContext, request: functions.contacts.UnblockRequest) -> bool:
    ctx.user.blocked.discard(ctx.world.resolve_peer(ctx.user, request.id).id)
    return True


@handles(functions.account.UpdateStatusRequest)
def update_status(ctx: RpcContext, request: Any) -> bool:
    return True


# endregion

# The other handler modules register themselves on import.
from . import rpc_auth, rpc_channels, rpc_files, rpc_messages, rpc_search  # noqa: E402,F401
