"""Wire-level: .vocab, .lang with a set, and a group's members as its vocabulary, with real
Telethon clients and the real bot over the loopback Telegram (tests/fakegram)."""

import asyncio
import time

import pytest
from telethon.tl.types import DocumentAttributeAudio

from voicebot.formatting import say

from .botharness import Inbox, transcribed
from .helpers import FIXTURES

pytestmark = pytest.mark.wire
NAMES = ("Siobhan", "Xochitl", "Nguyen", "Llandudno", "Tbilisi")
NAMES_OGG = (FIXTURES / "names.ogg").read_bytes()


def names_in(text):
    return {name for name in NAMES if name.lower() in text.lower()}


@pytest.fixture
async def alice(fakegram, running_bot):
    client = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(client, running_bot.id)
    await client.get_dialogs()
    owner = await running_bot.owner()
    await owner.get_input_entity("alice")  # the owner's phone knows the chat
    return client, inbox, owner, (await client.get_me()).id


async def test_vocab_add_list_remove_and_the_voice_hears_the_names(running_bot, alice):
    client, inbox, owner, alice_id = alice
    await owner.send_message(alice_id, ".vocab add Siobhan, Xochitl, Nguyen, Llandudno, Tbilisi")
    added = say("vocab_added", terms=", ".join(NAMES))
    await inbox.wait(lambda: added in inbox.texts.values())
    sent = await client.send_file(
        running_bot.username,
        FIXTURES / "names.ogg",
        voice_note=True,
        attributes=[DocumentAttributeAudio(duration=9, voice=True)],
    )
    await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=120)
    (text,) = inbox.replies_to(sent.id)
    assert names_in(text) == set(NAMES), text

    await owner.send_message(alice_id, ".vocab remove tbilisi, nobody")
    await owner.send_message(alice_id, ".vocab list")
    listed = say("vocab_list", terms="Siobhan, Xochitl, Nguyen, Llandudno")
    await inbox.wait(lambda: listed in inbox.texts.values())
    assert say("vocab_removed", terms="Siobhan, Xochitl, Nguyen, Llandudno") in inbox.texts.values()
    assert running_bot.bot.state.chats.get(alice_id).vocabulary == NAMES[:4]
    await owner.send_message(alice_id, ".vocab clear")  # not a verb: the usage, nothing changed
    await inbox.wait(lambda: any("usage" in t and "vocab add" in t for t in inbox.texts.values()))
    assert running_bot.bot.state.chats.get(alice_id).vocabulary == NAMES[:4]


async def test_lang_sets_a_language_set_or_a_pin_per_chat(running_bot, alice):
    _, inbox, owner, alice_id = alice
    chats = running_bot.bot.state.chats
    await owner.send_message(alice_id, ".lang ru, EN")
    await inbox.wait(lambda: say("langs_set", languages="ru, en") in inbox.texts.values())
    assert (chats.get(alice_id).languages, chats.get(alice_id).language) == (("ru", "en"), None)
    await owner.send_message(alice_id, ".lang uk")  # one code: today's pin, and the set is gone
    await inbox.wait(lambda: say("lang_set", language="uk") in inbox.texts.values())
    assert (chats.get(alice_id).languages, chats.get(alice_id).language) == ((), "uk")
    await owner.send_message(alice_id, ".lang ru,xx1")
    await inbox.wait(lambda: say("bad_lang", language="xx1") in inbox.texts.values())
    await owner.send_message(alice_id, ".lang auto")
    await inbox.wait(lambda: say("lang_auto") in inbox.texts.values())
    assert chats.get(alice_id).languages == () and chats.get(alice_id).language is None


async def answer_in(fakegram, user, group, voice_id, timeout=120.0):
    """The bot's final answer to ``voice_id`` in ``group``, as ``user`` sees the group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in fakegram.history(user, group):
            reply = getattr(m, "reply_to", None)
            if reply is not None and reply.reply_to_msg_id == voice_id and not m.message.startswith("🎙"):
                return m.message
        await asyncio.sleep(0.2)
    raise AssertionError(f"no answer to {voice_id} in {group.title}")


@pytest.mark.bot_settings(TRANSCRIBE_GROUPS="1")
async def test_a_small_groups_title_and_members_are_its_vocabulary(running_bot, alice, fakegram):
    """A supergroup (channels.getParticipants) titled with two places, whose members are named
    like the people in the voice; and a basic group (messages.getFullChat) of the same people.
    Without a vocabulary tiny.en hears none of the names ("Chivon", "Nuyen", "D. My Lizzy");
    with multi-word terms it still mishears some ("Lochitl"), so only the steady ones count."""
    client = alice[0]
    a = fakegram.user_of(client)
    siobhan = fakegram.create_user("Siobhan", last_name="Nguyen")
    xochitl = fakegram.create_user("Xochitl")
    group = fakegram.create_supergroup("Llandudno to Tbilisi", a, [siobhan, xochitl, running_bot.user])
    voice_id = fakegram.send_message(a, group, voice=NAMES_OGG, duration=9)
    assert {"Siobhan", "Nguyen", "Tbilisi"} <= names_in(await answer_in(fakegram, a, group, voice_id))

    basic = fakegram.create_group("Trip", a, [siobhan, xochitl, running_bot.user])
    voice_id = fakegram.send_message(a, basic, voice=NAMES_OGG, duration=9)
    assert {"Siobhan", "Nguyen"} <= names_in(await answer_in(fakegram, a, basic, voice_id))
