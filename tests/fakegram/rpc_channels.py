"""RPC handlers of ``channels.*``, ``updates.getChannelDifference`` and forum topics."""

from __future__ import annotations

from telethon.tl import TLObject, functions, types

from .records import ChannelRecord, Participant, RpcFail, UserRecord
from .rpc import RpcContext, handles
from .rpc_messages import messages_result


def _channel(ctx: RpcContext, channel: TLObject) -> ChannelRecord:
    return ctx.world.resolve_channel(ctx.user, channel)


def participant_tl(channel: ChannelRecord, participant: Participant, viewer: UserRecord) -> TLObject:
    """The constructor for a member's standing (core.telegram.org/type/ChannelParticipant)."""
    if participant.role == "creator":
        return types.ChannelParticipantCreator(
            user_id=participant.user_id, admin_rights=participant.admin_rights, rank=participant.rank
        )
    if participant.role == "admin":
        return types.ChannelParticipantAdmin(
            user_id=participant.user_id, promoted_by=channel.creator_id, date=participant.date,
            admin_rights=participant.admin_rights, rank=participant.rank,
            is_self=participant.user_id == viewer.id, can_edit=viewer.id == channel.creator_id,
        )  # fmt: skip
    if participant.role == "banned" or participant.banned_rights is not None:
        return types.ChannelParticipantBanned(
            peer=types.PeerUser(participant.user_id), kicked_by=channel.creator_id, date=participant.date,
            banned_rights=participant.banned_rights or types.ChatBannedRights(until_date=None, view_messages=True),
            left=participant.role == "banned",
        )  # fmt: skip
    if participant.user_id == viewer.id:
        return types.ChannelParticipantSelf(
            user_id=participant.user_id, inviter_id=participant.inviter_id, date=participant.date
        )
    return types.ChannelParticipant(user_id=participant.user_id, date=participant.date)


@handles(functions.channels.GetChannelsRequest)
def get_channels(ctx: RpcContext, request: functions.channels.GetChannelsRequest) -> types.messages.Chats:
    return types.messages.Chats(chats=[ctx.world.channel_tl(_channel(ctx, c), ctx.user) for c in request.id])


@handles(functions.channels.GetFullChannelRequest)
def get_full_channel(ctx: RpcContext, request: functions.channels.GetFullChannelRequest) -> TLObject:
    world, user = ctx.world, ctx.user
    channel = _channel(ctx, request.channel)
    world.access_channel(user, channel)
    last = channel.last_sent.get(user.id)
    users, chats = world.entities_tl(user, [user.id], [channel.id, *filter(None, [channel.linked_id])])
    return types.messages.ChatFull(
        full_chat=types.ChannelFull(
            id=channel.id, about="", read_inbox_max_id=channel.read_inbox.get(user.id, 0), read_outbox_max_id=0,
            unread_count=world.unread_count(user, ("channel", channel.id)), chat_photo=types.PhotoEmpty(0),
            notify_settings=types.PeerNotifySettings(), bot_info=[], pts=channel.pts,
            participants_count=len(channel.member_ids()), linked_chat_id=channel.linked_id,
            slowmode_seconds=channel.slow_mode or None,
            slowmode_next_send_date=last + channel.slow_mode if channel.slow_mode and last else None,
        ),
        chats=chats,
        users=users,
    )  # fmt: skip


@handles(functions.channels.GetParticipantRequest)
def get_participant(ctx: RpcContext, request: functions.channels.GetParticipantRequest) -> TLObject:
    world, user = ctx.world, ctx.user
    channel = _channel(ctx, request.channel)
    world.access_channel(user, channel)
    target = world.resolve_user(user, request.participant)
    participant = channel.participants.get(target.id)
    if participant is None or participant.role == "left":
        raise RpcFail(400, "USER_NOT_PARTICIPANT")
    users, chats = world.entities_tl(user, [target.id], [channel.id])
    return types.channels.ChannelParticipant(
        participant=participant_tl(channel, participant, user), chats=chats, users=users
    )


@handles(functions.channels.GetParticipantsRequest)
def get_participants(ctx: RpcContext, request: functions.channels.GetParticipantsRequest) -> TLObject:
    """core.telegram.org/method/channels.getParticipants: a supergroup's members to its members;
    a broadcast channel's subscribers only to its admins (400 CHAT_ADMIN_REQUIRED); kicked users
    and outsiders of a private one get 406 CHANNEL_PRIVATE (access_channel). ``count`` is the
    total, whatever ``offset``/``limit`` return (channelParticipantsRecent order: join date)."""
    world, user = ctx.world, ctx.user
    channel = _channel(ctx, request.channel)
    participant = world.access_channel(user, channel)
    if channel.broadcast and (participant is None or not participant.is_admin):
        raise RpcFail(400, "CHAT_ADMIN_REQUIRED")
    members = sorted((p for p in channel.participants.values() if p.is_member), key=lambda p: -p.date)
    page = members[max(request.offset, 0) : max(request.offset, 0) + max(min(request.limit, 200), 0)]
    users, chats = world.entities_tl(user, [p.user_id for p in page], [])
    return types.channels.ChannelParticipants(
        count=len(members), participants=[participant_tl(channel, p, user) for p in page], chats=chats, users=users
    )


@handles(functions.channels.GetMessagesRequest)
def get_channel_messages(ctx: RpcContext, request: functions.channels.GetMessagesRequest) -> TLObject:
    world = ctx.world
    channel = _channel(ctx, request.channel)
    world.access_channel(ctx.user, channel)
    posts, empty = [], []
    for wanted in request.id:
        msg_id = getattr(wanted, "id", 0)
        post = channel.messages.get(msg_id)
        if isinstance(wanted, types.InputMessageReplyTo):
            post = post.reply_to if post is not None else None
        if post is not None and post.id in channel.messages:
            posts.append(post)
        else:
            empty.append(types.MessageEmpty(id=msg_id, peer_id=types.PeerChannel(channel.id)))
    return messages_result(ctx, posts, channel=channel, empty=empty)


@handles(functions.channels.DeleteMessagesRequest)
def delete_channel_messages(ctx: RpcContext, request: functions.channels.DeleteMessagesRequest) -> TLObject:
    return ctx.world.channel_delete(ctx.user, _channel(ctx, request.channel), list(request.id), ctx.origin)


@handles(functions.channels.ReadHistoryRequest)
def read_channel_history(ctx: RpcContext, request: functions.channels.ReadHistoryRequest) -> bool:
    return ctx.world.channel_read(ctx.user, _channel(ctx, request.channel), request.max_id, ctx.origin)


@handles(functions.updates.GetChannelDifferenceRequest)
def get_channel_difference(ctx: RpcContext, request: functions.updates.GetChannelDifferenceRequest) -> TLObject:
    channel = _channel(ctx, request.channel)
    difference = ctx.world.channel_difference(ctx.user, channel, request.pts, request.limit)
    ctx.marks[channel.id] = max(ctx.marks.get(channel.id, 0), getattr(difference, "pts", 0))
    return difference


@handles(functions.messages.EditForumTopicRequest)
def edit_forum_topic(ctx: RpcContext, request: functions.messages.EditForumTopicRequest) -> TLObject:
    """Close or reopen a topic (needs manage_topics, or being its creator)."""
    world, user = ctx.world, ctx.user
    channel = world.resolve_peer(user, request.peer)
    if not isinstance(channel, ChannelRecord) or not channel.forum:
        raise RpcFail(400, "CHANNEL_INVALID")
    participant = world.access_channel(user, channel)
    topic = channel.topics.get(request.topic_id)
    if topic is None:
        raise RpcFail(400, "TOPIC_ID_INVALID")
    if participant is None or not (participant.can("manage_topics") or topic.creator_id == user.id):
        raise RpcFail(403, "CHAT_ADMIN_REQUIRED")
    if request.closed is not None:
        world.set_topic_closed(channel, topic.id, bool(request.closed), user)
    return types.Updates(updates=[], users=[], chats=[], date=0, seq=0)
