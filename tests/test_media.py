import pytest

from voicebot.config import load_settings
from voicebot.core.selection import Action, decide
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind

MB = 1024 * 1024


def settings(**env):
    return load_settings({"API_ID": "1", "API_HASH": "0" * 32, **env}, dotenv_path=None)


def message(
    kind=MediaKind.VOICE, chat=ChatKind.PRIVATE, out=False, size=20_000, duration=4.0, chat_id=42, username=None
):
    media = Media(kind, size=size, duration=duration) if kind else None
    return IncomingMessage(
        chat_id=chat_id,
        message_id=1,
        chat_kind=chat,
        sender_id=chat_id,
        outgoing=out,
        media=media,
        chat_username=username,
    )


@pytest.mark.parametrize(
    "kind, expected",
    [
        (MediaKind.VOICE, Action.TRANSCRIBE),
        (MediaKind.VIDEO_NOTE, Action.TRANSCRIBE),
        (MediaKind.AUDIO, Action.IGNORE),
        (MediaKind.VIDEO, Action.IGNORE),
        (None, Action.IGNORE),
    ],
)
def test_default_kinds(kind, expected):
    assert decide(message(kind), settings()).action is expected


def test_audio_and_video_are_opt_in():
    s = settings(TRANSCRIBE_AUDIO="1", TRANSCRIBE_VIDEO="1")
    assert decide(message(MediaKind.AUDIO), s).action is Action.TRANSCRIBE
    assert decide(message(MediaKind.VIDEO), s).action is Action.TRANSCRIBE


@pytest.mark.parametrize(
    "chat, env, expected",
    [
        (ChatKind.PRIVATE, {}, Action.TRANSCRIBE),
        (ChatKind.GROUP, {}, Action.IGNORE),
        (ChatKind.CHANNEL, {}, Action.IGNORE),
        (ChatKind.GROUP, {"TRANSCRIBE_GROUPS": "1"}, Action.TRANSCRIBE),
        (ChatKind.CHANNEL, {"TRANSCRIBE_CHANNELS": "1"}, Action.TRANSCRIBE),
        (ChatKind.PRIVATE, {"TRANSCRIBE_PRIVATE": "0"}, Action.IGNORE),
    ],
)
def test_chat_kinds(chat, env, expected):
    assert decide(message(chat=chat), settings(**env)).action is expected


def test_outgoing_is_opt_in():
    assert decide(message(out=True), settings()).action is Action.IGNORE
    assert decide(message(out=True), settings(TRANSCRIBE_OUTGOING="1")).action is Action.TRANSCRIBE


def test_allow_list_admits_only_listed_chats_even_groups():
    s = settings(ALLOW_CHATS="-100777,@friends")
    assert decide(message(chat_id=42), s).action is Action.IGNORE
    assert decide(message(chat=ChatKind.GROUP, chat_id=-100777), s).action is Action.TRANSCRIBE
    assert decide(message(chat=ChatKind.GROUP, chat_id=-5, username="Friends"), s).action is Action.TRANSCRIBE


def test_deny_list_wins():
    s = settings(ALLOW_CHATS="42", DENY_CHATS="42")
    assert decide(message(chat_id=42), s).action is Action.IGNORE
    assert decide(message(chat_id=43, username="spammer"), settings(DENY_CHATS="@spammer")).action is Action.IGNORE


def test_caps_refuse_with_a_reason():
    s = settings(MAX_FILE_MB="1", MAX_DURATION_SECONDS="60")
    big = decide(message(size=3 * MB), s)
    assert big.action is Action.REFUSE and big.reason == "too_big" and big.values["limit_mb"] == 1
    long = decide(message(duration=61), s)
    assert long.action is Action.REFUSE and long.reason == "too_long"
    assert decide(message(size=MB // 2, duration=59), s).action is Action.TRANSCRIBE
