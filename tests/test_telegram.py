"""The adapter on real Telethon objects: a TelegramClient that never connects, with its
network calls answered in memory, and messages built from telethon.tl.types."""

import datetime
import itertools
import shutil

import pytest
from telethon import TelegramClient, errors, functions
from telethon.sessions import MemorySession
from telethon.tl import types

from voicebot import metrics, telegram
from voicebot.config import load_settings
from voicebot.core.pipeline import Pipeline
from voicebot.formatting import say, utf16_len
from voicebot.messages import ChatKind, MediaKind
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import ALICE_ID, EXPECTED, FIXTURES, OWNER_ID, dispatch, telethon_message, wer

ALICE = types.User(id=ALICE_ID, access_hash=77, first_name="Alice", username="alice")


class OfflineClient(TelegramClient):
    """A real TelegramClient whose requests are answered in memory, as Telegram shapes them."""

    def __init__(self):
        super().__init__(MemorySession(), 1, "0" * 32)
        self._mb_entity_cache.set_self_user(OWNER_ID, False, 0)
        self.files = {}  # message id → fixture to "download"
        self.sent, self.edited, self.deleted, self.requests = [], [], [], []
        self.failing_downloads = 0
        self.errors = []  # exceptions to raise from the next requests, in order
        self._ids = itertools.count(900)
        self.full_reactions = None  # what messages.getMessagesReactions answers

    async def __call__(self, request, ordered=False, flood_sleep_threshold=None):
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        if isinstance(request, (functions.messages.SendMessageRequest, functions.messages.SendMediaRequest)):
            reply = types.Message(
                id=next(self._ids),
                peer_id=types.PeerUser(ALICE_ID),
                date=datetime.datetime.now(),
                message=request.message,
                out=True,
                entities=request.entities,
                reply_to=types.MessageReplyHeader(reply_to_msg_id=request.reply_to.reply_to_msg_id)
                if request.reply_to
                else None,
            )
            self.sent.append(reply)
            return types.Updates(
                updates=[types.UpdateMessageID(reply.id, request.random_id), types.UpdateNewMessage(reply, 0, 0)],
                users=[ALICE],
                chats=[],
                date=datetime.datetime.now(),
                seq=0,
            )
        if isinstance(request, functions.messages.GetMessagesReactionsRequest):
            return types.Updates(
                updates=[
                    types.UpdateMessageReactions(
                        peer=types.PeerUser(ALICE_ID), msg_id=msg_id, reactions=self.full_reactions
                    )
                    for msg_id in request.id
                ],
                users=[],
                chats=[],
                date=datetime.datetime.now(),
                seq=0,
            )
        if isinstance(request, functions.messages.EditMessageRequest):
            if self.edited and self.edited[-1] == (request.id, request.message):
                raise errors.MessageNotModifiedError(request=request)
            self.edited.append((request.id, request.message))
            return types.Updates(updates=[], users=[], chats=[], date=datetime.datetime.now(), seq=0)
        raise AssertionError(f"unexpected request {request!r}")

    async def delete_messages(self, entity, message_ids, **kwargs):
        self.deleted.extend(message_ids)

    async def download_media(self, message, file=None, **kwargs):
        if self.failing_downloads:
            self.failing_downloads -= 1
            raise errors.FileIdInvalidError(request=None)
        shutil.copyfile(self.files[message.id], file)
        return file

    def text_of(self, reply):
        edits = [text for message_id, text in self.edited if message_id == reply.id]
        return edits[-1] if edits else reply.message

    def replies_to(self, message_id):
        return [self.text_of(m) for m in self.sent if m.reply_to and m.reply_to.reply_to_msg_id == message_id]


def received(client, **kwargs):
    message = telethon_message(**kwargs)
    message._finish_init(client, {ALICE_ID: ALICE}, None)
    if "file" in kwargs:
        client.files[message.id] = kwargs["file"]
    return message


@pytest.fixture
def client():
    return OfflineClient()


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("voice", MediaKind.VOICE),
        ("video_note", MediaKind.VIDEO_NOTE),
        ("audio", MediaKind.AUDIO),
        ("video", MediaKind.VIDEO),
        ("audio_document", MediaKind.AUDIO),  # claims audio only by its MIME type
        ("document", None),
        ("text", None),
    ],
)
def test_describe_media_kinds(client, kind, expected):
    msg = telegram.describe(received(client, kind=kind, duration=7, size=12_345, text="hi"))
    assert (msg.media.kind if msg.media else None) is expected
    assert msg.chat_id == ALICE_ID and msg.sender_id == ALICE_ID and msg.chat_username == "alice"
    assert msg.chat_kind is ChatKind.PRIVATE and not msg.outgoing
    if (
        expected in (MediaKind.VOICE, MediaKind.VIDEO_NOTE, MediaKind.AUDIO, MediaKind.VIDEO)
        and kind != "audio_document"
    ):
        assert msg.media.duration == 7 and msg.media.size == 12_345 and msg.media.document_id


@pytest.mark.parametrize(
    "peer, post, kind",
    [
        (types.PeerChat(5), False, ChatKind.GROUP),
        (types.PeerChannel(6), False, ChatKind.GROUP),  # a supergroup
        (types.PeerChannel(6), True, ChatKind.CHANNEL),  # a broadcast post
    ],
)
def test_describe_chat_kinds(client, peer, post, kind):
    assert telegram.describe(received(client, chat=peer, post=post)).chat_kind is kind


def test_own_messages_are_outgoing(client):
    assert telegram.describe(received(client, out=True)).outgoing


def make_pipeline(tmp_path, engine, client, **env):
    s = load_settings(
        {"API_ID": "1", "API_HASH": "0" * 32, "TEMP_DIR": str(tmp_path / "temp"), **env}, dotenv_path=None
    )
    temp = TempDir(s.temp_dir)
    temp.prepare()
    pipeline = Pipeline(
        s, engine, telegram.TelethonChat(client, OWNER_ID), temp, State(tmp_path / "state.db"), owner_id=OWNER_ID
    )
    pipeline.start()
    return pipeline, s


async def feed(pipeline, client, *messages):
    for message in messages:
        await dispatch(pipeline).on_message(telegram.describe(message))
    await pipeline.drain()
    await pipeline.stop()


async def test_handler_transcribes_voice_and_video_note_only(tmp_path, engine, client):
    pipeline, s = make_pipeline(tmp_path, engine, client)
    await feed(
        pipeline,
        client,
        received(client, message_id=1, kind="voice", file=FIXTURES / "hello.ogg"),
        received(client, message_id=2, kind="video_note", file=FIXTURES / "video_note.mp4"),
        received(client, message_id=3, kind="audio", file=FIXTURES / "speech.mp3"),
        received(client, message_id=4, kind="document"),
        received(client, message_id=5, kind="text", text="hello there"),
    )
    (hello,) = client.replies_to(1)
    (video,) = client.replies_to(2)
    assert wer(EXPECTED["hello.ogg"], hello) <= 0.25
    assert wer(EXPECTED["video_note.mp4"], video) <= 0.25
    assert client.replies_to(3) == client.replies_to(4) == client.replies_to(5) == []
    placeholder = client.sent[0]
    assert placeholder.message == say("placeholder")  # sent first, then edited
    assert client.text_of(placeholder) == hello
    assert list(s.temp_dir.iterdir()) == []


async def test_audio_files_when_opted_in(tmp_path, engine, client):
    pipeline, _ = make_pipeline(tmp_path, engine, client, TRANSCRIBE_AUDIO="true")
    await feed(pipeline, client, received(client, message_id=3, kind="audio", file=FIXTURES / "speech.mp3"))
    assert "hello" in client.replies_to(3)[0].lower()


async def test_long_voice_transcript_is_split(tmp_path, engine, client, monkeypatch):
    import voicebot.core.delivery.deliver as delivery

    original = delivery.split_transcript
    monkeypatch.setattr(delivery, "split_transcript", lambda text, limit: original(text, limit=200))
    pipeline, _ = make_pipeline(tmp_path, engine, client)
    await feed(pipeline, client, received(client, message_id=1, file=FIXTURES / "long.ogg"))
    parts = client.replies_to(1)
    assert len(parts) >= 3
    assert all(utf16_len(p) <= 200 for p in parts)
    assert wer(EXPECTED["long.ogg"], " ".join(p.split(" ", 1)[1] for p in parts)) <= 0.25


async def test_failing_download_and_corrupt_file_then_next_works(tmp_path, engine, client):
    pipeline, s = make_pipeline(tmp_path, engine, client)
    client.failing_downloads = 1
    await feed(
        pipeline,
        client,
        received(client, message_id=1, file=FIXTURES / "hello.ogg"),
        received(client, message_id=2, file=FIXTURES / "random.ogg"),
        received(client, message_id=3, file=FIXTURES / "hello.ogg"),
    )
    assert client.replies_to(1) == [say("download_failed")]
    assert client.replies_to(2)[0].startswith(say("unreadable", reason="")[:20])
    assert "hello" in client.replies_to(3)[0].lower()
    assert list(s.temp_dir.iterdir()) == []


async def test_over_the_cap_is_refused_without_download(tmp_path, engine, client):
    pipeline, _ = make_pipeline(tmp_path, engine, client, MAX_FILE_MB="1")
    await feed(pipeline, client, received(client, message_id=1, size=80 * 2**20))
    assert client.replies_to(1) == [say("too_big", size_mb=80, limit_mb=1)]


def test_only_one_place_imports_each_library():
    """telethon only under voicebot/telegram/, the local engine's libraries only under
    voicebot/engine/local/, each remote client library in its one client module,
    prometheus_client only in voicebot/metrics.py, and the LLM's HTTP library (httpx2) only in
    voicebot/llm/client.py."""
    import pathlib
    import re

    package = pathlib.Path(telegram.__file__).parent.parent
    importers = {
        lib: sorted(
            {
                str(p.relative_to(package).parent if places else p.relative_to(package))
                for p in package.rglob("*.py")
                if re.search(rf"^\s*(from|import) {lib}\b", p.read_text(), re.M)
            }
        )
        for lib, places in (
            ("telethon", True),
            ("faster_whisper", True),
            ("ctranslate2", True),
            ("openai", False),
            ("wyoming", False),
            ("prometheus_client", False),
            ("httpx2", False),
        )
    }
    assert importers == {
        "telethon": ["telegram"],
        "faster_whisper": ["engine/local"],
        "ctranslate2": ["engine/local"],
        "openai": ["engine/remote/openai_client.py"],
        "wyoming": ["engine/remote/wyoming_client.py"],
        "prometheus_client": ["metrics.py"],
        "httpx2": ["llm/client.py"],
    }


# -- what the adapter reads off a message (issue: behave correctly on the real Telegram) ----------


def test_view_once_media_is_marked(client):
    message = received(client, kind="voice")
    message.media.ttl_seconds = 2147483647  # view-once (messageMediaDocument.ttl_seconds)
    assert telegram.describe(message).media.view_once
    assert not telegram.describe(received(client, kind="voice")).media.view_once


def test_a_link_preview_with_a_document_is_not_media(client):
    """Telethon's message.document falls back to the web preview's (tl/custom/message.py)."""
    preview = received(client, kind="voice")
    document = preview.media.document
    preview.media = types.MessageMediaWebPage(
        webpage=types.WebPage(id=1, url="https://example.com/v", display_url="example.com/v", hash=0, document=document)
    )
    preview.message = "look https://example.com/v"
    assert preview.document is not None  # what Telethon reports...
    assert telegram.describe(preview).media is None  # ...is not a voice message


def test_forwarded_topic_and_auto_forward(client):
    forwarded = received(client, kind="voice")
    forwarded.fwd_from = types.MessageFwdHeader(date=datetime.datetime(2026, 1, 1), from_id=types.PeerUser(5))
    assert telegram.describe(forwarded).forwarded

    in_topic = received(client, kind="voice", chat=types.PeerChannel(6))
    in_topic.reply_to = types.MessageReplyHeader(reply_to_msg_id=77, forum_topic=True)
    described = telegram.describe(in_topic)
    assert (described.topic_id, described.reply_to) == (77, None)
    in_topic.reply_to = types.MessageReplyHeader(reply_to_msg_id=80, reply_to_top_id=77, forum_topic=True)
    described = telegram.describe(in_topic)
    assert (described.topic_id, described.reply_to) == (77, 80)

    copy = received(client, kind="voice", chat=types.PeerChannel(6))
    copy.from_id = types.PeerChannel(9)
    copy.fwd_from = types.MessageFwdHeader(
        date=datetime.datetime(2026, 1, 1),
        from_id=types.PeerChannel(9),
        saved_from_peer=types.PeerChannel(9),
        saved_from_msg_id=3,
    )
    assert telegram.describe(copy).auto_forward


def test_links_open_on_every_client(client):
    chat = telegram.TelethonChat(client, OWNER_ID)
    assert chat.link(-1001234567890, 5) == "https://t.me/c/1234567890/5"
    assert chat.link(-1001234567890, 5, username="news") == "https://t.me/news/5"
    assert chat.link(-1001234567890, 5, topic_id=3) == "https://t.me/c/1234567890/3/5"
    assert chat.link(-5000, 5) is None  # basic groups have no message links
    assert chat.link(ALICE_ID, 5) == f"tg://user?id={ALICE_ID}"  # a mention, never tg://openmessage


@pytest.mark.parametrize(
    "error, name",
    [
        (errors.ChatWriteForbiddenError(None), "CHAT_WRITE_FORBIDDEN"),
        (errors.UserBannedInChannelError(None), "USER_BANNED_IN_CHANNEL"),
        (errors.PeerFloodError(None), "PEER_FLOOD"),
        (errors.RPCError(None, "SOMETHING_NEW", 400), "SOMETHING_NEW"),
    ],
)
async def test_rpc_errors_keep_telegrams_names(client, error, name):
    from voicebot.errors import TelegramError

    chat = telegram.TelethonChat(client, OWNER_ID)

    async def fail():
        raise error

    with pytest.raises(TelegramError) as info:
        await chat._call("send", fail)
    assert info.value.name == name


@pytest.mark.parametrize(
    "error",
    [
        errors.FloodWaitError(None, capture=1),
        errors.SlowModeWaitError(None, capture=1),
        errors.FloodPremiumWaitError(None, capture=1),
    ],
)
async def test_every_flood_error_is_waited_out_and_counted(client, error):
    chat = telegram.TelethonChat(client, OWNER_ID)
    calls = []
    waited = metrics.REGISTRY.get_sample_value("voicebot_flood_waits_total", {"action": "waited"})

    async def once():
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "ok"

    assert await chat._call("send", once) == "ok" and chat.flood_waits == 1
    assert metrics.REGISTRY.get_sample_value("voicebot_flood_waits_total", {"action": "waited"}) == waited + 1


async def test_a_flood_wait_over_the_cap_goes_back_to_the_journal(client):
    from voicebot.errors import Kind, RateLimited

    chat = telegram.TelethonChat(client, OWNER_ID)
    raised = metrics.REGISTRY.get_sample_value("voicebot_flood_waits_total", {"action": "raised"})

    async def slow_mode():
        raise errors.SlowModeWaitError(None, capture=3600)

    with pytest.raises(RateLimited) as info:
        await chat._call("send", slow_mode)
    assert metrics.REGISTRY.get_sample_value("voicebot_flood_waits_total", {"action": "raised"}) == raised + 1
    assert (info.value.name, info.value.seconds, info.value.kind) == ("SLOWMODE_WAIT_X", 3600, Kind.WAIT)


async def test_replies_in_a_forum_topic_name_the_topic_and_private_answers_quote_the_voice(client):
    chat = telegram.TelethonChat(client, OWNER_ID)
    in_topic = telegram.describe(received(client, message_id=40, kind="voice"))
    in_topic = type(in_topic)(**{**in_topic.__dict__, "topic_id": 7})
    await chat.send(None, "hi", reply_to=in_topic)
    reply_to = client.requests[-1].reply_to
    assert (reply_to.reply_to_msg_id, reply_to.top_msg_id, reply_to.reply_to_peer_id) == (40, 7, None)

    await chat.send("saved", "hi", reply_to=in_topic)
    request = client.requests[-1]
    assert isinstance(request.peer, types.InputPeerSelf)
    assert request.reply_to.reply_to_msg_id == 40
    assert request.reply_to.reply_to_peer_id == types.InputPeerUser(ALICE_ID, 77)  # a quote from another chat


# -- reactions (issue: the owner's hands) ----------------------------------------------------------


def reactions(*counts, min_=False):
    """messageReactions from (emoji, count, chosen_order or None) triples."""
    return types.MessageReactions(
        min=min_ or None,
        results=[types.ReactionCount(types.ReactionEmoji(e), n, chosen_order=order) for e, n, order in counts],
    )


async def test_only_the_accounts_own_reactions_are_read_as_its_own(client):
    from voicebot.messages import Reaction

    update = types.UpdateMessageReactions(
        peer=types.PeerUser(ALICE_ID), msg_id=7, reactions=reactions(("✍", 2, 3), ("👍", 1, None))
    )
    update._entities = {ALICE_ID: ALICE}
    read = await telegram.read_reaction(client, update, "✍")
    assert read == Reaction(chat_id=ALICE_ID, message_id=7, mine=frozenset({"✍"}), peer=f"user:{ALICE_ID}:77")
    assert client.requests == []  # chosen_order said it all


async def test_a_min_update_is_completed_with_get_messages_reactions(client):
    """min: "used for message reaction constructors that are the same for all users so they
    don't have the reactions sent by the current user" (constructor/messageReactions)."""
    client._mb_entity_cache.extend([ALICE], [])
    unrelated = types.UpdateMessageReactions(
        peer=types.PeerUser(ALICE_ID), msg_id=7, reactions=reactions(("👍", 3, None), min_=True)
    )
    assert await telegram.read_reaction(client, unrelated, "✍") is None and client.requests == []
    update = types.UpdateMessageReactions(
        peer=types.PeerUser(ALICE_ID), msg_id=7, reactions=reactions(("✍", 2, None), min_=True)
    )
    client.full_reactions = reactions(("✍", 2, 5))
    read = await telegram.read_reaction(client, update, "✍")
    assert read.mine == frozenset({"✍"})
    (request,) = client.requests
    assert isinstance(request, functions.messages.GetMessagesReactionsRequest) and request.id == [7]
    client.full_reactions = reactions(("✍", 2, None))  # someone else's ✍ after all
    assert (await telegram.read_reaction(client, update, "✍")).mine == frozenset()
