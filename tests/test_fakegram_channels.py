"""fakegram self-tests: supergroups and broadcast channels, driven by real Telethon clients."""

from __future__ import annotations

import datetime

import pytest
from telethon import events, functions, types
from telethon.errors import (
    ChannelPrivateError,
    ChatAdminRequiredError,
    MessageAuthorRequiredError,
    MessageIdInvalidError,
    UserNotParticipantError,
)

from tests.fakegram import Fakegram
from tests.fakegram.testing import collect, input_peer, marked, next_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


async def test_supergroup_messages_share_one_numbering_and_arrive_live(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    await alice.send_message("bob", "private hello")  # private ids run on their own counters
    group = fakegram.create_supergroup("Club", a, [b])
    inbox = collect(bob, events.NewMessage(incoming=True, chats=[marked(group)]))
    peer = await input_peer(alice, group)

    first = await alice.send_message(peer, "one")
    second = await alice.send_message(peer, "two")

    got = [await next_event(inbox), await next_event(inbox)]
    # One id sequence per channel, shared by all members: Bob sees Alice's ids (1 is "created").
    assert [(e.id, e.raw_text) for e in got] == [(first.id, "one"), (second.id, "two")] == [(2, "one"), (3, "two")]
    message = got[0].message
    assert message.peer_id == types.PeerChannel(group.id) and message.from_id == types.PeerUser(a.id)
    assert got[0].is_group and got[0].is_channel and not message.out
    assert [u.pts for u in group.events] == [2, 3, 4]  # one channel pts, bumped per message
    assert fakegram.calls["SendMessageRequest"] == 3


async def test_channel_messages_missed_while_reconnecting_come_by_channel_difference(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    group = fakegram.create_supergroup("Club", a, [b])
    inbox = collect(bob, events.NewMessage(incoming=True))
    fakegram.send_message(a, group, "live")
    assert (await next_event(inbox)).raw_text == "live"  # Bob's client now tracks the channel's pts

    fakegram.drop_connections(b)
    fakegram.send_message(a, group, "while reconnecting")  # no await: Bob has no live connection

    event = await next_event(inbox)
    assert (event.raw_text, event.chat_id) == ("while reconnecting", marked(group))
    assert fakegram.calls["GetChannelDifferenceRequest"] >= 1

    await bob.disconnect()
    fakegram.send_message(a, group, "while disconnected")
    await bob.connect()
    await bob.catch_up()  # account difference -> updateChannelTooLong -> getChannelDifference
    assert (await next_event(inbox)).raw_text == "while disconnected"


async def test_a_channel_gap_past_the_limit_is_channel_difference_too_long(fakegram: Fakegram) -> None:
    """updates.getChannelDifference with pts + limit < the channel's pts answers
    channelDifferenceTooLong with the new pts in its dialog (constructor page), not slices."""
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    group = fakegram.create_supergroup("Club", a, [b])
    start = group.pts
    for n in range(12):
        fakegram.send_message(a, group, f"m{n}")
    peer = await input_peer(bob, group)
    request = functions.updates.GetChannelDifferenceRequest
    near = await bob(request(peer, types.ChannelMessagesFilterEmpty(), pts=start, limit=20, force=False))
    assert isinstance(near, types.updates.ChannelDifference) and len(near.new_messages) == 12
    far = await bob(request(peer, types.ChannelMessagesFilterEmpty(), pts=start, limit=10, force=False))
    assert isinstance(far, types.updates.ChannelDifferenceTooLong)
    assert far.dialog.pts == group.pts and far.messages[0].message == "m11"


async def test_search_with_a_media_filter_finds_recordings_under_many_texts(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    group = fakegram.create_supergroup("Club", a, [b])
    old = fakegram.send_message(a, group, voice=b"OggS old", duration=2, date=1_000_000)
    voice = fakegram.send_message(a, group, voice=b"OggS new", duration=2)
    fakegram.send_message(a, group, video_note=b"mp4", duration=2)
    fakegram.send_message(a, group, audio=b"mp3", duration=2)
    for n in range(120):
        fakegram.send_message(a, group, f"text {n}")
    peer = await input_peer(bob, group)

    def search(search_filter, min_date=None, limit=100):
        return bob(functions.messages.SearchRequest(
            peer, "", search_filter, min_date=min_date, max_date=None, offset_id=0, add_offset=0,
            limit=limit, max_id=0, min_id=0, hash=0,
        ))  # fmt: skip

    found = await search(types.InputMessagesFilterRoundVoice())
    assert [m.id for m in found.messages] == [voice + 1, voice, old]  # the round one, then the voices
    recent = await search(types.InputMessagesFilterVoice(), min_date=datetime.datetime.fromtimestamp(2_000_000))
    assert [m.id for m in recent.messages] == [voice]
    assert len((await search(types.InputMessagesFilterEmpty(), limit=500)).messages) == 100  # at most 100 a call
    music = await search(types.InputMessagesFilterMusic())
    assert [m.media.document.attributes[0].voice for m in music.messages] == [False]


async def test_broadcast_channel_only_admins_post(fakegram: Fakegram) -> None:
    owner = await fakegram.new_user("Owner", username="owner")
    reader = await fakegram.new_user("Reader", username="reader")
    o, r = fakegram.user_of(owner), fakegram.user_of(reader)
    channel = fakegram.create_channel("News", o, [r], username="newsroom")
    inbox = collect(reader, events.NewMessage(incoming=True))

    entity = await reader.get_entity("newsroom")  # contacts.resolveUsername of a public channel
    assert entity.broadcast and not entity.megagroup and entity.id == channel.id
    with pytest.raises(ChatAdminRequiredError):
        await reader.send_message(entity, "can I post?")

    post = await owner.send_message(await input_peer(owner, channel), "breaking")
    event = await next_event(inbox)
    assert (event.id, event.raw_text) == (post.id, "breaking")
    # A post: post=True, no from_id, views; Telethon shows the channel as its sender.
    assert event.message.post and event.message.from_id is None and event.message.views == 1
    assert event.sender_id == event.chat_id == marked(channel)
    assert event.message.post_author is None

    channel.signatures = True
    fakegram.send_message(o, channel, "signed")
    assert (await next_event(inbox)).message.post_author == "Owner"


async def test_posts_are_auto_forwarded_into_the_discussion_group(fakegram: Fakegram) -> None:
    owner = fakegram.create_user("Owner", username="owner")
    bob = await fakegram.new_user("Bob", username="bob")
    b = fakegram.user_of(bob)
    channel = fakegram.create_channel("News", owner, [b])
    group = fakegram.create_supergroup("News chat", owner, [b])
    fakegram.link_discussion(channel, group)
    in_group = collect(bob, events.NewMessage(chats=[marked(group)]))

    post_id = fakegram.send_message(owner, channel, "post with comments")

    copy = (await next_event(in_group)).message
    assert copy.raw_text == "post with comments" and copy.pinned
    assert copy.from_id == types.PeerChannel(channel.id)
    header = copy.fwd_from
    assert (header.from_id, header.channel_post) == (types.PeerChannel(channel.id), post_id)
    assert (header.saved_from_peer, header.saved_from_msg_id) == (types.PeerChannel(channel.id), post_id)
    full = await bob(functions.channels.GetFullChannelRequest(await input_peer(bob, channel)))
    assert full.full_chat.linked_chat_id == group.id


async def test_channel_history_participants_delete_and_read(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    carol = fakegram.create_user("Carol", username="carol")
    group = fakegram.create_supergroup("Club", a, [b], slow_mode=10)
    ids = [fakegram.send_message(a, group, f"m{i}") for i in range(3)]
    deleted = collect(bob, events.MessageDeleted)
    read = collect(alice, events.MessageRead(inbox=False))
    peer = await input_peer(bob, group)

    history = await bob.get_messages(peer, limit=10)
    assert [m.raw_text for m in history][:3] == ["m2", "m1", "m0"]
    assert [m.id for m in await bob.get_messages(peer, ids=ids)] == ids  # channels.getMessages
    assert (await bob.get_messages(peer, ids=9999)) is None
    full = (await bob(functions.channels.GetFullChannelRequest(peer))).full_chat
    assert (full.slowmode_seconds, full.participants_count, full.pts) == (10, 2, group.pts)
    permissions = await bob.get_permissions(peer, "alice")  # channels.getParticipant
    assert permissions.is_creator
    with pytest.raises(UserNotParticipantError):
        await bob(functions.channels.GetParticipantRequest(peer, types.InputUser(carol.id, carol.access_hash)))

    await bob.send_read_acknowledge(peer, max_id=ids[-1])  # channels.readHistory
    assert (await next_event(read)).max_id == ids[-1]
    await alice.delete_messages(await input_peer(alice, group), [ids[0]])  # channels.deleteMessages
    gone = await next_event(deleted)
    assert (gone.deleted_ids, gone.chat_id) == ([ids[0]], marked(group))


async def test_banned_user_loses_the_channel(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    b = fakegram.user_of(bob)
    group = fakegram.create_supergroup("Club", alice, [b])
    peer = await input_peer(bob, group)
    fakegram.ban(group, b)

    with pytest.raises(ChannelPrivateError):
        await bob.send_message(peer, "let me back in")
    with pytest.raises(ChannelPrivateError):
        await bob.get_messages(peer, limit=1)


async def test_message_ids_name_a_message_only_within_their_chat(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    bot_user = fakegram.user_of(bot)
    alice = fakegram.create_user("Alice", username="alice")
    group = fakegram.create_supergroup("Club", alice, [bot_user])
    fakegram.send_message(alice, bot_user, "hi bot")  # private id 1
    mine_private = await bot.send_message("alice", "bot's private message")  # private id 2
    for n in range(3):
        fakegram.send_message(alice, bot_user, f"private {n}")  # private ids 3..5
    group_peer = await input_peer(bot, group)
    mine_in_group = await bot.send_message(group_peer, "bot's group message")  # group id 2
    alices_in_group = fakegram.send_message(alice, group, "alice in the group")  # group id 3
    assert (mine_private.id, mine_in_group.id, alices_in_group) == (2, 2, 3)

    with pytest.raises(MessageIdInvalidError):  # no message 5 in the group
        await bot.edit_message(group_peer, 5, "wrong chat")
    with pytest.raises(MessageAuthorRequiredError):  # private id 3 is Alice's "private 0"
        await bot.edit_message("alice", alices_in_group, "wrong chat")
    # The group message's id names the bot's own *private* message: the edit lands there.
    await bot.edit_message("alice", mine_in_group.id, "meant for the group")
    assert (await bot.get_messages("alice", ids=2)).raw_text == "meant for the group"
    assert (await bot.get_messages(group_peer, ids=2)).raw_text == "bot's group message"
