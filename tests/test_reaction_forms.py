"""The owner's ✍ in whatever form Telegram tells the bot's session of it, or in none.

No page says what the reactor's *other* sessions receive (core.telegram.org/api/reactions
promises ``updateMessageReactions`` to the author only), so the fake is switched per chat kind
(``fakegram.tell_reactor``): a push, an edit with ``edit_hide``, or nothing, in which case only
the bot's poll (``messages.getMessagesReactions``) finds the reaction. Whatever the form, one
answer per recording. tests/test_reactions.py covers the rules of the pushed form.
"""

import asyncio

import pytest
from telethon import functions, types

from tests.fakegram.testing import input_peer, marked

from .botharness import BotProcess, Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire
HELLO = (FIXTURES / "hello.ogg").read_bytes()
WEATHER = (FIXTURES / "weather.ogg").read_bytes()
FAST_POLL = "0.5"


async def react(owner, peer, msg_id, emoji="✍"):
    """messages.sendReaction from the owner's phone (an empty emoji takes it back)."""
    await owner(
        functions.messages.SendReactionRequest(
            peer=peer, msg_id=msg_id, reaction=[types.ReactionEmoji(emoji)] if emoji else []
        )
    )


@pytest.fixture
async def alice(fakegram, running_bot):
    client = await fakegram.new_user("Alice", username="alice")
    await client.get_dialogs()
    await (await running_bot.owner()).get_input_entity("alice")
    return client, fakegram.user_of(client)


async def private_voice(fakegram, running_bot, alice_user, voice=HELLO):
    """Alice's voice to the owner: her id of it (for her inbox) and the owner's (to react)."""
    hers = fakegram.send_message(alice_user, running_bot.user, voice=voice, duration=2)
    return hers, fakegram.history(running_bot.user, alice_user)[0].id


def answered(inbox, voice, word):
    return any(word in text.lower() for text in inbox.replies_to(voice))


@pytest.mark.parametrize("how", ["push", "edit", "nothing"])
@pytest.mark.bot_settings(TRANSCRIBE_PRIVATE="0", REACTION_POLL_SECONDS=FAST_POLL)
async def test_the_owners_reaction_is_honoured_once_in_every_form_and_chat_kind(running_bot, alice, fakegram, how):
    client, alice_user = alice
    fakegram.tell_reactor(how)
    owner = await running_bot.owner()
    saved = Inbox(owner, running_bot.id)
    hers, mine = await private_voice(fakegram, running_bot, alice_user)
    group = fakegram.create_group("Friends", alice_user, [running_bot.user])
    club = fakegram.create_supergroup("Club", alice_user, [running_bot.user])
    news = fakegram.create_channel("News", alice_user, [running_bot.user])
    in_group = fakegram.send_message(alice_user, group, voice=HELLO, duration=2)
    owners_in_group = fakegram.history(running_bot.user, group)[0].id
    in_club = fakegram.send_message(alice_user, club, voice=HELLO, duration=2)
    in_news = fakegram.send_message(alice_user, news, voice=WEATHER, duration=3)
    inboxes = {
        "private": (Inbox(client, running_bot.id), hers),
        "group": (Inbox(client, marked(group)), in_group),
        "supergroup": (Inbox(client, marked(club)), in_club),
        "channel": (saved, in_news),  # a channel post is answered in Saved Messages
    }
    await react(owner, await owner.get_input_entity("alice"), mine)
    await react(owner, await input_peer(owner, group), owners_in_group)
    await react(owner, await input_peer(owner, club), in_club)
    await react(owner, await input_peer(owner, news), in_news)
    for kind, (inbox, voice) in inboxes.items():
        word = "sunny" if kind == "channel" else "hello"  # Saved Messages' answer starts with a 🎙 heading
        await inbox.wait(lambda inbox=inbox, voice=voice, word=word: answered(inbox, voice, word))
    # Later rounds of the poll (and repeats of the update) see ✍ again: a sentinel after them.
    sentinel = fakegram.send_message(alice_user, club, voice=WEATHER, duration=3)
    await react(owner, await input_peer(owner, club), sentinel)
    await inboxes["supergroup"][0].wait(lambda: transcribed(inboxes["supergroup"][0], sentinel))
    for kind, (inbox, voice) in inboxes.items():
        (answer,) = inbox.replies_to(voice)
        assert ("sunny" if kind == "channel" else "hello") in answer.lower(), (kind, answer)


@pytest.mark.bot_settings(TRANSCRIBE_PRIVATE="0", REACTION_POLL_SECONDS="3600")
async def test_a_reaction_told_only_as_an_edit_in_a_private_chat(running_bot, alice, fakegram):
    """LonamiWebs/Telethon#4093: the same account's reaction came as updateEditMessage with
    edit_hide. The poll is an hour away here: only the edit can bring it."""
    client, alice_user = alice
    fakegram.tell_reactor("edit", "private")
    inbox = Inbox(client, running_bot.id)
    hers, mine = await private_voice(fakegram, running_bot, alice_user)
    owner = await running_bot.owner()
    await react(owner, await owner.get_input_entity("alice"), mine)
    await inbox.wait(lambda: transcribed(inbox, hers))
    assert wer(EXPECTED["hello.ogg"], inbox.replies_to(hers)[0]) <= 0.25


@pytest.mark.parametrize("emoji", ["✍", "off"])
@pytest.mark.bot_settings(REACTION_POLL_SECONDS=FAST_POLL)
async def test_in_a_supergroup_where_nothing_is_pushed_the_poll_finds_it_unless_reactions_are_off(
    running_bot, alice, fakegram, emoji
):
    client, alice_user = alice
    if emoji == "off":
        await running_bot.stop()
        await running_bot.start(REACT_TO_TRANSCRIBE="off")
    club = fakegram.create_supergroup("Club", alice_user, [running_bot.user])
    inbox = Inbox(client, marked(club))
    owner = await running_bot.owner()
    voice = fakegram.send_message(alice_user, club, voice=HELLO, duration=2)
    await react(owner, await input_peer(owner, club), voice)
    if emoji == "✍":
        await inbox.wait(lambda: transcribed(inbox, voice))
        assert wer(EXPECTED["hello.ogg"], inbox.replies_to(voice)[0]) <= 0.25
        assert fakegram.calls["GetMessagesReactionsRequest"] >= 1
        return
    other = fakegram.send_message(alice_user, club, voice=WEATHER, duration=3)
    await owner.send_message(marked(club), ".t", reply_to=other)  # the bot is up and working
    await inbox.wait(lambda: any("sunny" in t.lower() for t in inbox.texts.values()))
    await asyncio.sleep(4 * float(FAST_POLL))  # several rounds a poll would have had
    assert fakegram.calls["GetMessagesReactionsRequest"] == 0
    assert inbox.replies_to(voice) == []


@pytest.mark.parametrize("how", ["push", "edit", "nothing"])
@pytest.mark.bot_settings(TRANSCRIBE_PRIVATE="0", REACTION_POLL_SECONDS="3600")
async def test_a_reaction_given_while_the_bot_was_down_is_honoured_at_start_once(running_bot, alice, fakegram, how):
    """A push has no pts (not replayed) and Telethon 1.45 drops a replayed edit
    (MessageBox.apply_pts_info): at start the bot looks at the last hour's recordings itself."""
    client, alice_user = alice
    fakegram.tell_reactor(how)
    inbox = Inbox(client, running_bot.id)
    owner = await running_bot.owner()
    alice_peer = await owner.get_input_entity("alice")
    first, mine = await private_voice(fakegram, running_bot, alice_user)
    await running_bot.stop()
    await react(owner, alice_peer, mine)
    await running_bot.start()
    await inbox.wait(lambda: transcribed(inbox, first))
    await running_bot.stop()
    second, mine = await private_voice(fakegram, running_bot, alice_user, WEATHER)
    await react(owner, alice_peer, mine)
    await running_bot.start()  # sees ✍ on both: the first is answered already
    await inbox.wait(lambda: transcribed(inbox, second))
    assert "sunny" in inbox.replies_to(second)[0].lower()
    (answer,) = inbox.replies_to(first)
    assert wer(EXPECTED["hello.ogg"], answer) <= 0.25


@pytest.mark.parametrize(
    "how, private, supergroup",
    [
        ("push", "updateMessageReactions ×1", "updateMessageReactions ×1"),
        ("edit", "updateEditMessage ×1", "updateEditChannelMessage ×1"),
        ("nothing", "nothing", "nothing"),
    ],
)
async def test_doctor_listen_reports_which_updates_bring_the_owners_reactions(
    fakegram, tmp_path, how, private, supergroup
):
    """What a real owner runs once (`doctor --listen 60`) to settle the unverified rows."""
    fakegram.tell_reactor(how)
    owner = fakegram.create_user("Owner", username="owner")
    alice_user = fakegram.create_user("Alice", username="alice")
    fakegram.send_message(alice_user, owner, "hi")
    club = fakegram.create_supergroup("Club", alice_user, [owner])
    post = fakegram.send_message(alice_user, club, "hello all")
    doctor = BotProcess(fakegram, owner, tmp_path / "doctor", "tiny")
    doctor.argv[-1:] = ["doctor", "--listen", "8"]
    await doctor.start()
    try:
        await doctor.wait_for_log("listening 8 s")
        phone = fakegram.client_for(owner)
        await phone.connect()
        await react(phone, await phone.get_input_entity("alice"), fakegram.history(owner, alice_user)[0].id)
        await react(phone, await input_peer(phone, club), post)
        assert await asyncio.wait_for(doctor.process.wait(), 60) == 0
    finally:
        await doctor.stop()
    report = doctor.log.read_text()
    assert f"  private: {private}" in report and f"  supergroup: {supergroup}" in report, report


async def test_a_reaction_given_while_the_process_was_down_is_answered_once(fakegram, tmp_path, model_path):
    """The real process keeps Telethon's update state in its session file, so its catch-up
    replays the edit the reaction made, and Telethon drops it (MessageBox.apply_difference_type
    sets the state first): the look at start is what answers it."""
    fakegram.tell_reactor("edit", "private")
    owner = fakegram.create_user("Owner", username="owner")
    bot = await BotProcess(
        fakegram, owner, tmp_path / "bot", model_path, TRANSCRIBE_PRIVATE="0", REACTION_POLL_SECONDS="3600"
    ).start()
    client = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(client, owner.id)
    await client.get_dialogs()
    phone = fakegram.client_for(owner)
    await phone.connect()
    try:
        voice = fakegram.send_message(fakegram.user_of(client), owner, voice=HELLO, duration=2)
        await bot.wait_for_log(f"ignored message {fakegram.history(owner, fakegram.user_of(client))[0].id}")
        await bot.stop()
        await react(
            phone, await phone.get_input_entity("alice"), fakegram.history(owner, fakegram.user_of(client))[0].id
        )
        await bot.start()
        await inbox.wait(lambda: transcribed(inbox, voice), timeout=90)
        sentinel = fakegram.send_message(fakegram.user_of(client), owner, voice=WEATHER, duration=3)
        await bot.wait_for_log(f"ignored message {fakegram.history(owner, fakegram.user_of(client))[0].id}")
        await bot.stop()
        await react(
            phone, await phone.get_input_entity("alice"), fakegram.history(owner, fakegram.user_of(client))[0].id
        )
        await bot.start()  # ✍ on both now: only the sentinel is new
        await inbox.wait(lambda: transcribed(inbox, sentinel), timeout=90)
    finally:
        await bot.stop()
    assert len(inbox.replies_to(voice)) == 1 and "hello" in inbox.replies_to(voice)[0].lower()
    assert "sunny" in inbox.replies_to(sentinel)[0].lower()
