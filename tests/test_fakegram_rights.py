"""fakegram self-tests: who may write where (topics, slow mode, restrictions, blocks, deleted accounts)."""

from __future__ import annotations

import pytest
from telethon import events, types
from telethon.errors import (
    ChatSendMediaForbiddenError,
    ChatSendPlainForbiddenError,
    ChatWriteForbiddenError,
    ForbiddenError,
    InputUserDeactivatedError,
    SlowModeWaitError,
    UserBannedInChannelError,
    UserDeactivatedError,
    YouBlockedUserError,
)
from telethon.errors.rpcbaseerrors import AuthKeyError
from telethon.tl.functions.messages import SendMessageRequest
from telethon.tl.types import InputReplyToMessage

from tests.fakegram import Fakegram, RpcFail
from tests.fakegram.testing import collect, input_peer, marked, next_event, no_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


async def test_forum_topics(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    b = fakegram.user_of(bob)
    forum = fakegram.create_supergroup("Forum", alice, [b], forum=True)
    topic = fakegram.create_topic(forum, "Voices", alice)
    other = fakegram.create_topic(forum, "Other", alice)
    peer = await input_peer(bob, forum)

    in_topic = fakegram.send_message(alice, forum, "voice here", reply_to=topic)
    to_topic = await bob.send_message(peer, "into the topic", reply_to=topic)
    header = to_topic.reply_to
    assert (header.forum_topic, header.reply_to_msg_id, header.reply_to_top_id) == (True, topic, None)

    # A reply naming the topic in top_msg_id (as documented) lands in it, with reply_to_top_id set.
    reply = await bob(SendMessageRequest(peer, "reply", reply_to=InputReplyToMessage(in_topic, top_msg_id=topic)))
    message = next(u.message for u in reply.updates if hasattr(u, "message"))
    assert (message.reply_to.forum_topic, message.reply_to.reply_to_msg_id, message.reply_to.reply_to_top_id) == (
        True, in_topic, topic)  # fmt: skip
    # Without top_msg_id the server infers the topic from the replied message.
    inferred = await bob.send_message(peer, "inferred", reply_to=in_topic)
    assert (inferred.reply_to.reply_to_top_id, inferred.reply_to.forum_topic) == (topic, True)
    # A plain message goes to "General": no reply header at all.
    assert (await bob.send_message(peer, "general")).reply_to is None
    assert fakegram.history(b, forum)[1].reply_to.reply_to_top_id == topic

    fakegram.close_topic(forum, topic)
    # 406 TOPIC_CLOSED is not in Telethon's error list: it raises its generic class for 406.
    with pytest.raises(AuthKeyError, match="TOPIC_CLOSED") as excinfo:
        await bob.send_message(peer, "closed?", reply_to=topic)
    assert excinfo.value.code == 406
    with pytest.raises(AuthKeyError, match="TOPIC_CLOSED"):
        await bob.send_message(peer, "closed?", reply_to=in_topic)
    assert (await bob.send_message(peer, "other topic", reply_to=other)).reply_to.reply_to_msg_id == other
    fakegram.send_message(alice, forum, "the owner still may", reply_to=topic)  # manage_topics


async def test_slow_mode(fakegram: Fakegram) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob", flood_sleep_threshold=0)
    b = fakegram.user_of(bob)
    group = fakegram.create_supergroup("Slow", alice, [b], slow_mode=60)
    peer = await input_peer(bob, group)

    first = await bob.send_message(peer, "first")
    with pytest.raises(SlowModeWaitError) as excinfo:  # 420 SLOWMODE_WAIT_X, a FloodError
        await bob.send_message(peer, "second")
    assert 0 < excinfo.value.seconds <= 60 and excinfo.value.code == 420
    await bob.edit_message(peer, first.id, "first (edited)")  # edits do not count
    fakegram.send_message(alice, group, "admins are exempt")
    fakegram.send_message(alice, group, "twice")
    group.last_sent[b.id] -= 60  # the minute is over
    await bob.send_message(peer, "second, later")


async def test_restricted_members_get_the_documented_errors(fakegram: Fakegram, tmp_path) -> None:
    alice = fakegram.create_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob", flood_sleep_threshold=0)
    b = fakegram.user_of(bob)
    group = fakegram.create_supergroup("Strict", alice, [b])
    peer = await input_peer(bob, group)
    transcript = tmp_path / "transcript.txt"
    transcript.write_text("hello")

    fakegram.restrict(group, b, send_plain=False)
    with pytest.raises(ChatSendPlainForbiddenError):
        await bob.send_message(peer, "text")
    await bob.send_file(peer, transcript)  # documents are still allowed

    fakegram.restrict(group, b, send_docs=False)
    with pytest.raises(ForbiddenError, match="CHAT_SEND_DOCS_FORBIDDEN"):
        await bob.send_file(peer, transcript)
    await bob.send_message(peer, "text is fine again")

    fakegram.restrict(group, b, send_media=False)
    with pytest.raises(ChatSendMediaForbiddenError):
        await bob.send_file(peer, transcript, caption="with a caption")

    fakegram.restrict(group, b, send_messages=False)
    with pytest.raises(ChatWriteForbiddenError):
        await bob.send_message(peer, "read-only member")

    fakegram.restrict(group, b)  # lifted
    fakegram.limit_account(b)  # spam-limited account
    with pytest.raises(UserBannedInChannelError):
        await bob.send_message(peer, "spam?")
    with pytest.raises(RpcFail, match="USER_BANNED_IN_CHANNEL"):
        fakegram.send_message(b, group, "also server-side")


async def test_anonymous_admin_and_posting_as_a_channel(fakegram: Fakegram) -> None:
    owner = fakegram.create_user("Owner", username="owner")
    admin = fakegram.create_user("Admin", username="admin")
    bob = await fakegram.new_user("Bob", username="bob")
    b = fakegram.user_of(bob)
    group = fakegram.create_supergroup("Club", owner, [b])
    channel = fakegram.create_channel("Owner's channel", owner)
    fakegram.promote(group, admin, anonymous=True, rank="moderator")
    inbox = collect(bob, events.NewMessage(incoming=True))

    fakegram.send_message(admin, group, "anonymously")
    message = (await next_event(inbox)).message
    assert message.from_id == types.PeerChannel(group.id) and message.post_author == "moderator"

    fakegram.send_message(owner, group, "as my channel", send_as=channel)
    event = await next_event(inbox)
    assert event.message.from_id == types.PeerChannel(channel.id)
    assert event.sender_id == marked(channel)
    with pytest.raises(RpcFail, match="SEND_AS_PEER_INVALID"):
        fakegram.send_message(b, group, "as someone else's channel", send_as=channel)


async def test_blocked_and_deleted_users(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)
    bob_inbox = collect(bob, events.NewMessage(incoming=True))
    fakegram.block(b, a)  # Bob blocks Alice

    sent = await alice.send_message("bob", "are you there?")  # no error: it just never arrives
    assert sent.id and await no_event(bob_inbox)
    assert [m.message for m in fakegram.history(b, a)] == []
    with pytest.raises(YouBlockedUserError):  # 400, the blocker writing to the blocked
        await bob.send_message("alice", "hi")
    helper_bot = fakegram.create_user("Helper", username="helperbot", bot=True)
    fakegram.block(b, helper_bot)
    with pytest.raises(RpcFail, match="USER_IS_BLOCKED"):  # a bot is told (403)
        fakegram.send_message(helper_bot, b, "news")

    carol = await fakegram.new_user("Carol", username="carol", flood_sleep_threshold=0)
    carol_entity = await alice.get_input_entity("carol")
    fakegram.delete_account(fakegram.user_of(carol))
    with pytest.raises(InputUserDeactivatedError):
        await alice.send_message(carol_entity, "hello?")
    assert (await alice.get_entity(carol_entity)).deleted
    with pytest.raises(UserDeactivatedError):  # the deleted account's own session is dead (401)
        await carol.get_messages("alice", limit=1)
