"""fakegram self-tests: messages.sendReaction and who hears of it (tests/fakegram/reactions.py)."""

from __future__ import annotations

import pytest
from telethon import errors, events, functions, types

from tests.fakegram import Fakegram
from tests.fakegram.testing import collect, input_peer, next_event, no_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


def reaction(*emoji: str) -> list[types.TypeReaction]:
    return [types.ReactionEmoji(e) for e in emoji]


async def listening(client):
    """A session that receives pushed updates (it fetched its state, as an app at start-up)."""
    await client.get_me()
    await client(functions.updates.GetStateRequest())
    return collect(client, events.Raw(types.UpdateMessageReactions))


async def test_the_reactor_and_the_author_hear_of_a_reaction(fakegram: Fakegram) -> None:
    fakegram.tell_reactor("push", "private")  # what no page promises: here, asked for
    alice = await fakegram.new_user("Alice", "alice")
    owner_phone = await fakegram.new_user("Owner", "owner")
    owner = fakegram.user_of(owner_phone)
    owner_bot = fakegram.client_for(owner)  # another session of the same account
    await owner_bot.connect()
    to_bot, to_alice = await listening(owner_bot), await listening(alice)
    alices_id = fakegram.send_message(fakegram.user_of(alice), owner, voice=b"OggS", duration=1)
    owners_id = fakegram.history(owner, fakegram.user_of(alice))[0].id
    await owner_phone.get_dialogs()

    result = await owner_phone(
        functions.messages.SendReactionRequest(
            peer=await owner_phone.get_input_entity("alice"), msg_id=owners_id, reaction=reaction("✍")
        )
    )
    (mine,) = result.updates[0].reactions.results
    assert mine.reaction.emoticon == "✍" and mine.count == 1 and mine.chosen_order is not None
    other_device = await next_event(to_bot)  # the owner's other session: the same, chosen_order set
    assert other_device.msg_id == owners_id and other_device.reactions.results[0].chosen_order is not None
    author = await next_event(to_alice)  # the author: by her own id, not chosen by her, unread
    assert author.msg_id == alices_id and author.reactions.results[0].chosen_order is None
    (recent,) = author.reactions.recent_reactions
    assert recent.peer_id == types.PeerUser(owner.id) and recent.unread and not recent.my

    # Alice's ✍ on her own message: the owner is neither reactor nor author, so hears nothing...
    await alice(
        functions.messages.SendReactionRequest(
            peer=await alice.get_input_entity("owner"), msg_id=alices_id, reaction=reaction("✍")
        )
    )
    assert await no_event(to_bot)
    # ...but sees it when reading the message: two ✍, one of them the owner's own.
    (message,) = await owner_bot.get_messages("alice", ids=[owners_id])
    (both,) = message.reactions.results
    assert both.count == 2 and both.chosen_order == mine.chosen_order

    await owner_phone(
        functions.messages.SendReactionRequest(
            peer=await owner_phone.get_input_entity("alice"), msg_id=owners_id, reaction=[]
        )
    )  # taken back
    removed = await next_event(to_bot)
    assert [(r.count, r.chosen_order) for r in removed.reactions.results] == [(1, None)]


async def test_what_telegram_refuses(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", "alice")
    bob = fakegram.create_user("Bob", "bob")
    msg = (await alice.send_message("bob", "hi")).id
    peer = await alice.get_input_entity("bob")

    async def send(reactions):
        return await alice(functions.messages.SendReactionRequest(peer=peer, msg_id=msg, reaction=reactions))

    with pytest.raises(errors.ReactionInvalidError):
        await send(reaction("🦆"))  # not one of Telegram's reactions
    with pytest.raises(errors.ReactionInvalidError):
        await send(reaction("✍\ufe0f"))  # Telegram spells it without the variation selector
    with pytest.raises(errors.PremiumAccountRequiredError):
        await send([types.ReactionCustomEmoji(document_id=5)])
    with pytest.raises(errors.PremiumAccountRequiredError):
        await send(reaction("👍", "✍"))  # reactions_user_max_default is 1
    await send(reaction("👍"))
    with pytest.raises(errors.MessageNotModifiedError):
        await send(reaction("👍"))
    with pytest.raises(errors.MessageIdInvalidError):
        await alice(functions.messages.SendReactionRequest(peer=peer, msg_id=msg + 100, reaction=reaction("👍")))
    assert fakegram.history(bob, fakegram.user_of(alice))[0].reactions.results[0].count == 1


async def test_channels_show_counts_and_answer_get_messages_reactions(fakegram: Fakegram) -> None:
    admin = await fakegram.new_user("Admin", "admin")
    reader = await fakegram.new_user("Reader", "reader")
    news = fakegram.create_channel("News", fakegram.user_of(admin), [fakegram.user_of(reader)])
    post = fakegram.send_message(fakegram.user_of(admin), news, "post")
    to_admin = await listening(admin)
    peer = await input_peer(reader, news)
    await reader(functions.messages.SendReactionRequest(peer=peer, msg_id=post, reaction=reaction("🔥")))
    told = await next_event(to_admin)  # the author of the post
    assert told.peer.channel_id == news.id and not told.reactions.recent_reactions
    assert not told.reactions.can_see_list  # a broadcast channel shows counts only
    full = await admin(functions.messages.GetMessagesReactionsRequest(peer=await input_peer(admin, news), id=[post]))
    (update,) = full.updates
    assert update.msg_id == post and update.reactions.results[0].count == 1


async def two_sessions(fakegram: Fakegram):
    """Alice, and two sessions of the owner (the phone reacts, the bot listens to everything)."""
    alice = await fakegram.new_user("Alice", "alice")
    phone = await fakegram.new_user("Owner", "owner")
    owner = fakegram.user_of(phone)
    bot = fakegram.client_for(owner)
    await bot.connect()
    await bot.get_me()
    await bot(functions.updates.GetStateRequest())
    heard = collect(
        bot, events.Raw((types.UpdateMessageReactions, types.UpdateEditMessage, types.UpdateEditChannelMessage))
    )
    await phone.get_dialogs()
    return alice, phone, owner, heard


async def test_by_default_the_reactors_other_sessions_hear_nothing(fakegram: Fakegram) -> None:
    """api/reactions promises updateMessageReactions to the author only."""
    alice, phone, owner, heard = await two_sessions(fakegram)
    to_alice = await listening(alice)
    fakegram.send_message(fakegram.user_of(alice), owner, voice=b"OggS", duration=1)
    mine = fakegram.history(owner, fakegram.user_of(alice))[0].id
    await phone(
        functions.messages.SendReactionRequest(
            peer=await phone.get_input_entity("alice"), msg_id=mine, reaction=reaction("✍")
        )
    )
    assert (await next_event(to_alice)).reactions.results[0].count == 1  # the author is told
    assert await no_event(heard)


async def test_an_edit_carries_the_reaction_to_the_reactors_other_sessions(fakegram: Fakegram) -> None:
    fakegram.tell_reactor("edit", "private", "supergroup")
    alice, phone, owner, heard = await two_sessions(fakegram)
    fakegram.send_message(fakegram.user_of(alice), owner, voice=b"OggS", duration=1)
    mine = fakegram.history(owner, fakegram.user_of(alice))[0].id
    await phone(
        functions.messages.SendReactionRequest(
            peer=await phone.get_input_entity("alice"), msg_id=mine, reaction=reaction("✍")
        )
    )
    edit = await next_event(heard)
    assert isinstance(edit, types.UpdateEditMessage) and edit.message.id == mine and edit.message.edit_hide
    assert [(r.reaction.emoticon, r.chosen_order is not None) for r in edit.message.reactions.results] == [("✍", True)]

    club = fakegram.create_supergroup("Club", fakegram.user_of(alice), [owner])
    post = fakegram.send_message(fakegram.user_of(alice), club, voice=b"OggS", duration=1)
    await phone(
        functions.messages.SendReactionRequest(peer=await input_peer(phone, club), msg_id=post, reaction=reaction("✍"))
    )
    edit = await next_event(heard)
    assert isinstance(edit, types.UpdateEditChannelMessage) and edit.message.id == post and edit.message.edit_hide
    assert edit.message.reactions.results[0].chosen_order is not None


async def test_get_messages_reactions_and_what_it_refuses(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", "alice")
    bob = await fakegram.new_user("Bob", "bob")
    secret = fakegram.create_supergroup("Secret", fakegram.user_of(alice), [])
    post = fakegram.send_message(fakegram.user_of(alice), secret, voice=b"OggS", duration=1)
    peer = await input_peer(alice, secret)
    await alice(functions.messages.SendReactionRequest(peer=peer, msg_id=post, reaction=reaction("✍")))
    full = await alice(functions.messages.GetMessagesReactionsRequest(peer=peer, id=[post, post + 50]))
    (update,) = full.updates  # an id naming no message is left out
    assert update.msg_id == post and update.reactions.results[0].chosen_order is not None
    with pytest.raises(errors.LimitInvalidError):
        await alice(functions.messages.GetMessagesReactionsRequest(peer=peer, id=list(range(1, 102))))
    with pytest.raises(errors.MsgIdInvalidError):
        await alice(functions.messages.GetMessagesReactionsRequest(peer=peer, id=[0]))
    with pytest.raises(errors.ChannelPrivateError):  # Bob never joined the private group
        await bob(functions.messages.GetMessagesReactionsRequest(peer=peer, id=[post]))
    stranger = types.InputPeerUser(fakegram.user_of(bob).id, access_hash=1)
    with pytest.raises(errors.PeerIdInvalidError):
        await alice(functions.messages.GetMessagesReactionsRequest(peer=stranger, id=[1]))
    with pytest.raises(ValueError):
        fakegram.tell_reactor("shout")
