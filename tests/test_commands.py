"""Owner commands through the real pipeline, with the in-memory chat and the real engine."""

import asyncio
import time

import pytest

from voicebot.config import load_settings
from voicebot.core.controls.commands import Command, parse_command
from voicebot.core.pipeline import Pipeline
from voicebot.formatting import say
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import ALICE_ID, EXPECTED, FIXTURES, OWNER_ID, MemoryChat, dispatch, wer

CHAT = ALICE_ID


@pytest.mark.parametrize(
    "text, expected",
    [
        (".t", Command("t")),
        (".lang  uk ", Command("lang", "uk")),
        (".FIND train journey", Command("find", "train journey")),
        (".tomorrow?", None),
        ("t", None),
        ("", None),
    ],
)
def test_parse_command(text, expected):
    assert parse_command(text, ".") == expected


def test_custom_prefix():
    assert parse_command("!status", "!") == Command("status")
    assert parse_command(".status", "!") is None


def voice(message_id, name=None, chat_kind=ChatKind.PRIVATE, sender=ALICE_ID, outgoing=False, doc=None):
    media = Media(MediaKind.VOICE, size=20_000, duration=5, document_id=doc or 700 + message_id)
    return IncomingMessage(
        chat_id=CHAT,
        message_id=message_id,
        chat_kind=chat_kind,
        sender_id=sender,
        outgoing=outgoing,
        media=media,
        date=time.time(),
        sender_name="Alice",
    )


def command(message_id, text, reply_to=None, sender=OWNER_ID):
    return IncomingMessage(
        chat_id=CHAT,
        message_id=message_id,
        chat_kind=ChatKind.PRIVATE,
        sender_id=sender,
        outgoing=sender == OWNER_ID,
        text=text,
        reply_to=reply_to,
        date=time.time(),
    )


@pytest.fixture
def bot(tmp_path, engine):
    def build(files=None, **env):
        s = load_settings(
            {"API_ID": "1", "API_HASH": "0" * 32, "TEMP_DIR": str(tmp_path / "temp"), "DATA_DIR": str(tmp_path), **env},
            dotenv_path=None,
        )
        chat = MemoryChat({i: FIXTURES / n for i, n in (files or {}).items()})
        temp = TempDir(s.temp_dir)
        temp.prepare()
        pipeline = Pipeline(s, engine, chat, temp, State(tmp_path / "state.db"), owner_id=OWNER_ID)
        pipeline.start()
        return pipeline, chat

    return build


async def send(pipeline, chat, *messages):
    for msg in messages:
        chat.add(msg)
        await dispatch(pipeline).on_message(msg)
    await pipeline.drain()


async def test_t_transcribes_on_demand_where_auto_is_off(bot):
    pipeline, chat = bot({1: "weather.ogg"})
    group_voice = voice(1, chat_kind=ChatKind.GROUP)  # groups are off by default
    await send(pipeline, chat, group_voice)
    assert chat.replies == []
    await send(pipeline, chat, command(2, ".t", reply_to=1))
    # the command message itself was edited: placeholder first, transcript last
    assert chat.edits[0] == (2, say("placeholder"))
    assert wer(EXPECTED["weather.ogg"], chat.messages[2]) <= 0.25
    assert chat.replies == []  # nothing else was posted in the chat


async def test_t_without_reply_or_media_explains(bot):
    pipeline, chat = bot()
    await send(pipeline, chat, command(1, ".t"), command(2, "plain text"), command(3, ".t", reply_to=2))
    assert chat.messages[1] == say("no_reply", prefix=".", command="t")
    assert chat.messages[3] == say("not_media", prefix=".")


async def test_commands_from_anyone_else_are_ignored(bot):
    pipeline, chat = bot({1: "hello.ogg"})
    await send(
        pipeline,
        chat,
        voice(1, chat_kind=ChatKind.GROUP),
        command(2, ".t", reply_to=1, sender=ALICE_ID),
        command(3, ".auto on", sender=ALICE_ID),
    )
    assert chat.edits == [] and chat.replies == []
    assert pipeline.state.chats.get(CHAT).auto is None


async def test_auto_off_and_on_per_chat(bot):
    pipeline, chat = bot({1: "hello.ogg", 3: "hello.ogg", 5: "hello.ogg"})
    await send(pipeline, chat, command(10, ".auto off"), voice(1))
    assert chat.messages[10] == say("auto_off", prefix=".")
    assert chat.texts_for(1) == []
    await send(pipeline, chat, command(11, ".auto on"), voice(3, chat_kind=ChatKind.GROUP))
    assert "hello" in chat.texts_for(3)[0].lower()  # a group, switched on by the owner
    await send(pipeline, chat, command(12, ".auto sometimes"))
    assert "usage" in chat.messages[12]
    await send(pipeline, chat, command(13, ".auto default"), voice(5, chat_kind=ChatKind.GROUP))
    assert chat.texts_for(5) == []


async def test_lang_pins_and_validates(bot):
    pipeline, chat = bot()
    await send(pipeline, chat, command(1, ".lang UK"), command(2, ".lang русский"))
    assert pipeline.state.chats.get(CHAT).language == "uk"
    assert chat.messages[1] == say("lang_set", language="uk")
    assert chat.messages[2].startswith("⚠️")
    await send(pipeline, chat, command(3, ".lang auto"))
    assert pipeline.state.chats.get(CHAT).language is None


async def test_status_help_and_russian(bot):
    pipeline, chat = bot({1: "hello.ogg"}, BOT_LANGUAGE="ru")
    await send(pipeline, chat, voice(1))
    await send(pipeline, chat, command(2, ".status"), command(3, ".help"))
    ((target, status_id),) = chat.sent_to  # .status reveals other chats: it goes to Saved Messages
    status = chat.messages[status_id]
    assert target == "saved" and 2 in chat.deleted
    assert "очередь: ждут 0, в работе 0" in status and "готово: 1" in status
    assert "cpu" in status and "коэффициент" in status
    assert ".find" in chat.messages[3] and "команды" in chat.messages[3]


async def test_find_searches_past_transcripts_with_links(bot):
    pipeline, chat = bot({1: "weather.ogg", 2: "long.ogg"})
    await send(pipeline, chat, voice(1), voice(2))
    await send(pipeline, chat, command(3, ".find train"), command(4, ".find zebra"), command(5, '.find "rain" OR *'))
    # Typed in Alice's chat, but the snippets may come from anyone's: the answers go to
    # Saved Messages, and the commands vanish from the shared chat.
    assert [target for target, _ in chat.sent_to] == ["saved"] * 3 and {3, 4, 5} <= set(chat.deleted)
    found, none, hostile = (chat.messages[i] for _, i in chat.sent_to)
    assert "t.me/c/" in found and "«train»" in found.lower()
    assert '/2"' in found and '/1"' not in found
    assert none == say("find_none", query="zebra")
    assert hostile.startswith("🔎")  # a hostile query is answered like any other


async def test_find_typed_in_saved_messages_answers_in_place(bot):
    pipeline, chat = bot({1: "weather.ogg"})
    await send(pipeline, chat, voice(1))
    saved = IncomingMessage(
        chat_id=OWNER_ID,
        message_id=9,
        chat_kind=ChatKind.PRIVATE,
        sender_id=OWNER_ID,
        outgoing=True,
        text=".find rain",
        date=time.time(),
    )
    await send(pipeline, chat, saved)
    assert chat.sent_to == [] and "«rain»" in chat.messages[9]


async def test_srt_from_the_cache(bot):
    pipeline, chat = bot({1: "long.ogg"})
    await send(pipeline, chat, voice(1))
    await send(pipeline, chat, command(2, ".srt", reply_to=1))
    ((target, reply_to, name, data),) = chat.documents
    srt = data.decode()
    assert (target, reply_to, name) == (None, 1, "transcript.srt")
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "train" in srt.lower()
    assert 2 in chat.deleted  # the command message is cleaned up


async def test_srt_before_transcription_explains(bot):
    pipeline, chat = bot()
    await send(pipeline, chat, voice(1, chat_kind=ChatKind.GROUP), command(2, ".srt", reply_to=1))
    assert chat.messages[2] == say("no_srt", prefix=".")


async def test_the_owner_posting_as_the_group_still_commands(bot):
    """Anonymous admins and send_as post with the chat as sender; Telegram still marks the
    message ``out`` on the owner's own account."""
    pipeline, chat = bot()
    anonymous = IncomingMessage(
        chat_id=-1001234,
        message_id=1,
        chat_kind=ChatKind.GROUP,
        sender_id=-1001234,
        outgoing=True,
        text=".lang de",
        date=time.time(),
    )
    stranger = IncomingMessage(
        chat_id=-1001234,
        message_id=2,
        chat_kind=ChatKind.GROUP,
        sender_id=-1001234,
        outgoing=False,
        text=".lang fr",
        date=time.time(),
    )
    await send(pipeline, chat, anonymous, stranger)
    assert pipeline.state.chats.get(-1001234).language == "de"


# -- reactions as controls (voicebot/reactions.py; over the wire: test_reactions.py) ----------------


async def test_help_names_the_reaction_unless_it_is_off(bot):
    pipeline, chat = bot()
    await send(pipeline, chat, command(1, ".help"))
    assert "✍ reaction (yours)" in chat.messages[1]
    assert "Saved Messages without Premium, use .t" in chat.messages[1]  # where ✍ cannot be given
    pipeline, chat = bot(REACT_TO_TRANSCRIBE="off")
    await send(pipeline, chat, command(2, ".help"))
    assert "reaction" not in chat.messages[2] and ".t" in chat.messages[2]


async def test_a_reaction_racing_the_automatic_answer_adds_no_second_one(bot):
    """The voice arrives and the owner reacts at once: the reaction's fetch is in flight when
    the automatic job is journaled. One answer, not two (the journal decides)."""
    from voicebot.messages import Reaction

    pipeline, chat = bot({1: "hello.ogg"})
    msg = chat.add(voice(1))
    fetch = chat.fetch

    async def slow_fetch(*args):
        await asyncio.sleep(0.05)  # the network round trip the automatic path overtakes
        return await fetch(*args)

    chat.fetch = slow_fetch
    await asyncio.gather(
        dispatch(pipeline).on_reaction(Reaction(CHAT, 1, frozenset({"✍"}))), dispatch(pipeline).on_message(msg)
    )
    await dispatch(pipeline).on_reaction(Reaction(CHAT, 1, frozenset({"✍"})))  # toggled again later
    await pipeline.drain()
    assert len(chat.answers_for(1)) == 1 and wer(EXPECTED["hello.ogg"], chat.answers_for(1)[0]) <= 0.25


async def test_reactions_that_are_not_the_owners_chosen_emoji_do_nothing(bot):
    from voicebot.messages import Reaction

    pipeline, chat = bot({1: "hello.ogg"}, TRANSCRIBE_PRIVATE="0")
    chat.add(voice(1))
    for mine in (frozenset(), frozenset({"👍"})):  # someone else's ✍ / removed, another emoji
        await dispatch(pipeline).on_reaction(Reaction(CHAT, 1, mine))
    await dispatch(pipeline).on_reaction(Reaction(CHAT, 99, frozenset({"✍"})))  # a message that is gone
    await pipeline.drain()
    assert chat.answers_for(1) == [] and not pipeline.state.journal.handled(CHAT, 1)
    await dispatch(pipeline).on_reaction(Reaction(CHAT, 1, frozenset({"✍", "👍"})))
    await pipeline.drain()
    assert len(chat.answers_for(1)) == 1
