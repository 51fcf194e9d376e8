"""Reactions as controls, over the wire: the owner reacts ✍ from the phone (another session of
the same account), the fake tells the bot's session with ``updateMessageReactions`` (switched on
here: tests/fakegram/reactions.py), and the recording gets its
transcript, once, where ``.t`` would put it.

Negative checks wait for a sentinel (another recording the owner reacts to) instead of a sleep:
updates reach the bot in order, so once the sentinel's answer is there, an answer the first
reaction wrongly caused would have been sent before it.
"""

import pytest
from telethon import functions, types

from tests.fakegram.testing import marked

from .botharness import Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire
HELLO = (FIXTURES / "hello.ogg").read_bytes()
WEATHER = (FIXTURES / "weather.ogg").read_bytes()


@pytest.fixture
async def alice(fakegram, running_bot):
    # These are the rules of the pushed form; no page promises it to the reactor's other
    # sessions (tests/test_reaction_forms.py has the edit and the poll).
    fakegram.tell_reactor("push")
    client = await fakegram.new_user("Alice", username="alice")
    await client.get_dialogs()
    owner = await running_bot.owner()
    await owner.get_input_entity("alice")  # the owner's phone knows her, as a real one would
    return client, fakegram.user_of(client), Inbox(client, running_bot.id)


async def react(client, peer, msg_id, emoji="✍"):
    """messages.sendReaction, as an app does on a tap (an empty list takes the reaction back)."""
    await client(
        functions.messages.SendReactionRequest(
            peer=await client.get_input_entity(peer),
            msg_id=msg_id,
            reaction=[types.ReactionEmoji(emoji)] if emoji else [],
        )
    )


def owners_id(fakegram, running_bot, peer):
    """The id of the newest message of the owner's chat with ``peer`` (each account numbers
    private-chat and basic-group messages its own way)."""
    return fakegram.history(running_bot.user, peer)[0].id


async def sentinel(fakegram, running_bot, alice, emoji="✍"):
    """Alice sends another voice, the owner reacts, and its transcript arrives."""
    client, alice_user, inbox = alice
    sent = fakegram.send_message(alice_user, running_bot.user, voice=WEATHER, duration=3)
    await react(await running_bot.owner(), alice_user.id, owners_id(fakegram, running_bot, alice_user), emoji)
    await inbox.wait(lambda: transcribed(inbox, sent))
    assert "sunny" in inbox.replies_to(sent)[0].lower()


@pytest.mark.bot_settings(TRANSCRIBE_PRIVATE="0")
async def test_the_owners_reaction_transcribes_where_automatic_transcription_is_off(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    owner = await running_bot.owner()
    text = fakegram.send_message(alice_user, running_bot.user, "just words")
    await react(owner, alice_user.id, owners_id(fakegram, running_bot, alice_user))  # on a text: only a reaction
    voice = fakegram.send_message(alice_user, running_bot.user, voice=HELLO, duration=2)
    mine = owners_id(fakegram, running_bot, alice_user)
    await react(owner, alice_user.id, mine)
    await inbox.wait(lambda: transcribed(inbox, voice))
    (answer,) = inbox.replies_to(voice)
    assert wer(EXPECTED["hello.ogg"], answer) <= 0.25  # a reply to the voice, as .t gives
    for emoji in ("", "✍", "", "✍"):  # taken back and given again: never a second answer
        await react(owner, alice_user.id, mine, emoji)
    await sentinel(fakegram, running_bot, alice)
    assert len(inbox.replies_to(voice)) == 1
    assert inbox.replies_to(text) == []


async def test_only_the_owners_own_reaction_counts(running_bot, alice, fakegram):
    """Alice reacts ✍ to the owner's own voice: the owner's sessions hear of it (the author is
    told, core.telegram.org/api/reactions) but it is not the owner's reaction."""
    client, alice_user, inbox = alice
    owner = await running_bot.owner()
    owners_copy = fakegram.send_message(running_bot.user, alice_user, voice=HELLO, duration=2)  # not automatic
    alices_copy = fakegram.history(alice_user, running_bot.user)[0].id
    await react(client, running_bot.username, alices_copy)
    await sentinel(fakegram, running_bot, alice)
    assert inbox.replies_to(alices_copy) == []
    await react(owner, alice_user.id, owners_copy)  # now the owner's own: ✍ count 2, chosen
    await inbox.wait(lambda: transcribed(inbox, alices_copy))
    assert wer(EXPECTED["hello.ogg"], inbox.replies_to(alices_copy)[0]) <= 0.25


async def test_a_reaction_to_a_view_once_voice_answers_in_saved_messages_only(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    owner = await running_bot.owner()
    saved = Inbox(owner, running_bot.id)
    secret = fakegram.send_message(alice_user, running_bot.user, voice=WEATHER, duration=3, ttl_seconds=2**31 - 1)
    await react(owner, alice_user.id, owners_id(fakegram, running_bot, alice_user))
    await saved.wait(lambda: any("sunny" in t.lower() for t in saved.texts.values()))
    voice = fakegram.send_message(alice_user, running_bot.user, voice=HELLO, duration=2)  # automatic
    await inbox.wait(lambda: transcribed(inbox, voice))
    assert inbox.replies_to(secret) == []
    assert not any("sunny" in t.lower() for t in inbox.texts.values())  # Alice never sees its text


async def test_a_reaction_in_a_group_where_groups_are_off(running_bot, alice, fakegram):
    client, alice_user, _ = alice
    group = fakegram.create_group("Friends", alice_user, [running_bot.user])
    inbox = Inbox(client, marked(group))
    voice = fakegram.send_message(alice_user, group, voice=HELLO, duration=2)
    await react(await running_bot.owner(), marked(group), owners_id(fakegram, running_bot, group))
    await inbox.wait(lambda: transcribed(inbox, voice))
    assert wer(EXPECTED["hello.ogg"], inbox.replies_to(voice)[0]) <= 0.25


@pytest.mark.bot_settings(REACT_TO_TRANSCRIBE="👀", TRANSCRIBE_PRIVATE="0")
async def test_only_the_configured_emoji_transcribes(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    voice = fakegram.send_message(alice_user, running_bot.user, voice=HELLO, duration=2)
    await react(await running_bot.owner(), alice_user.id, owners_id(fakegram, running_bot, alice_user), "✍")
    await sentinel(fakegram, running_bot, alice, "👀")
    assert inbox.replies_to(voice) == []
