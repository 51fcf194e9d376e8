"""Vocabulary and language sets: the budget and its order, the in-set choice, the engines
hearing names they miss without help (tiny.en), per-chat settings in the state."""

import dataclasses

import numpy as np
import pytest

from voicebot import audio
from voicebot.config import load_settings
from voicebot.core.vocabulary import SMALL_GROUP, vocabulary_for
from voicebot.engine import Segment, StreamInfo, Transcriber
from voicebot.engine.base import BUDGET_TOKENS, budgeted, choose_in_set, cost, prompt_text
from voicebot.engine.local import FasterWhisperTranscriber
from voicebot.engine.remote.pool import Endpoint, EndpointPool
from voicebot.engine.remote.transcriber import RemoteTranscriber
from voicebot.engine.remote.wire import Heard
from voicebot.errors import ConfigError
from voicebot.formatting import say
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind
from voicebot.state import State
from voicebot.state.chat_settings import ChatSettings

from .helpers import FIXTURES, MemoryChat

NAMES = ("Siobhan", "Xochitl", "Nguyen", "Llandudno", "Tbilisi")


def settings(**env):
    return load_settings(env, dotenv_path=None, require_telegram=False)


def names_in(text):
    return {name for name in NAMES if name.lower() in text.lower()}


# -- the budget and its order ---------------------------------------------------------


def test_most_specific_first_each_term_once_within_the_budget():
    terms = budgeted(["Siobhan", "Alice 🌸 Smith"], ["siobhan", "ALICE SMITH", "Llandudno"], ["", "  "])
    assert terms == ("Siobhan", "Alice Smith", "Llandudno")
    many = [f"Name{i:03d}" for i in range(200)]
    kept = budgeted(["Chat term"], many)
    assert kept[0] == "Chat term" and kept[1:] == tuple(many[: len(kept) - 1])  # order kept, tail cut
    assert sum(cost(t) for t in kept) <= BUDGET_TOKENS < sum(cost(t) for t in ["Chat term", *many])
    # a term too long for what is left is skipped; a shorter one after it still fits
    assert budgeted(["a" * 20, "b" * 40, "c"], budget=10) == ("a" * 20, "c")


def test_prompt_text_joins_the_terms():
    assert prompt_text(["Siobhan", " Llandudno ", ""]) == "Siobhan, Llandudno"


async def test_a_voices_vocabulary_in_order_from_every_source():
    chat = MemoryChat()
    chat.member_names[-5] = ["Xochitl Nguyen", "Alice"]
    chat.contact_names = ["Bob Tbilisi", "Siobhan"]
    msg = IncomingMessage(-5, 1, ChatKind.GROUP, 2000, False, sender_name="Alice", chat_title="Llandudno trip")
    here = ChatSettings(vocabulary=("Siobhan", "Kubernetes"))
    s = settings(VOCABULARY="Grafana, kubernetes", VOCABULARY_CONTACTS="true")
    terms = await vocabulary_for(msg, s, here, chat)
    assert terms == ("Siobhan", "Kubernetes", "Alice", "Llandudno trip", "Xochitl Nguyen", "Grafana", "Bob Tbilisi")
    # contacts are off by default; a private chat asks for no members
    private = dataclasses.replace(msg, chat_kind=ChatKind.PRIVATE)
    assert await vocabulary_for(private, settings(), ChatSettings(), chat) == ("Alice", "Llandudno trip")
    assert chat.calls == {"members": 1, "contacts": 1}


async def test_a_large_group_or_a_refusal_leaves_only_the_members_out():
    chat = MemoryChat()
    chat.member_names[-5] = [f"Member {i}" for i in range(SMALL_GROUP + 1)]
    msg = IncomingMessage(-5, 1, ChatKind.GROUP, 2000, False, sender_name="Alice", chat_title="Big")
    assert await vocabulary_for(msg, settings(VOCABULARY="Tbilisi"), ChatSettings(), chat) == (
        "Alice",
        "Big",
        "Tbilisi",
    )
    chat.fail("members", "CHAT_ADMIN_REQUIRED")
    chat.fail("contacts", "AUTH_KEY_UNREGISTERED")
    s = settings(VOCABULARY="Tbilisi", VOCABULARY_CONTACTS="1")
    assert await vocabulary_for(msg, s, ChatSettings(), chat) == ("Alice", "Big", "Tbilisi")


# -- the settings ---------------------------------------------------------------------


def test_settings_parse_and_refuse_with_the_settings_name():
    s = settings(WHISPER_LANGUAGES=" RU, uk,en,ru", VOCABULARY="Siobhan, ,Llandudno,Siobhan")
    assert s.whisper_languages == ("ru", "uk", "en") and s.vocabulary == ("Siobhan", "Llandudno")
    assert settings().whisper_languages == () and settings().vocabulary == () and not settings().vocabulary_contacts
    assert settings(WHISPER_LANGUAGES="auto").whisper_languages == ()
    for name, value in (
        ("WHISPER_LANGUAGES", "ru,russian"),
        ("VOCABULARY", "x" * 65),
        ("VOCABULARY_CONTACTS", "maybe"),
    ):
        with pytest.raises(ConfigError) as caught:
            settings(**{name: value})
        assert caught.value.setting == name


def test_chat_settings_keep_one_pin_or_one_set_and_terms(tmp_path):
    with State(tmp_path / "state.db") as state:
        chats = state.chats
        chats.set_language(1, "uk")
        chats.set_languages(1, ["ru", "EN", "ru"])
        assert chats.get(1) == ChatSettings(languages=("ru", "en"))
        chats.set_language(1, "uk")
        assert chats.get(1) == ChatSettings(language="uk")
        assert chats.add_terms(1, ["Siobhan", "  Xochitl   Nguyen ", "siobhan"]) == ("Siobhan", "Xochitl Nguyen")
        assert chats.remove_terms(1, ["SIOBHAN", "nobody"]) == ("Xochitl Nguyen",)
        chats.remove_terms(1, ["Xochitl Nguyen"])
        chats.set_language(1, None)
        assert chats.get(1) == ChatSettings()
    with State(tmp_path / "state.db") as state:  # survives a restart
        state.chats.add_terms(2, ["Tbilisi"])
        assert state.chats.get(2).vocabulary == ("Tbilisi",)


def test_a_version_2_files_chat_settings_read_as_before(tmp_path):
    """The previous release's rows (.auto, .lang) survive migration 3, with no set and no terms."""
    import sqlite3

    from voicebot.state.db import MIGRATIONS

    conn = sqlite3.connect(tmp_path / "old.db")
    conn.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2; COMMIT;")
    conn.execute("INSERT INTO chat_settings (chat_id, auto, language) VALUES (42, 0, 'uk')")
    conn.commit()
    conn.close()
    with State(tmp_path / "old.db") as state:
        assert state.chats.get(42) == ChatSettings(auto=False, language="uk")
        state.chats.add_terms(42, ["Siobhan"])
        state.chats.set_auto(42, None)
        assert state.chats.get(42) == ChatSettings(language="uk", vocabulary=("Siobhan",))


# -- the in-set choice ------------------------------------------------------------------


def test_the_most_probable_language_of_the_set_wins():
    probabilities = {"de": 0.7, "en": 0.2, "uk": 0.06, "ru": 0.04}
    assert choose_in_set("de", 0.7, ("ru", "uk", "en"), None, probabilities) == ("en", 0.2)
    assert choose_in_set("de", 0.7, (), None, probabilities) == ("de", 0.7)  # no set: as before
    assert choose_in_set("en", 0.9, ("ru", "en"), "ru", probabilities) == ("en", 0.9)  # inside: kept
    # the confusable rule still applies inside the set: unsure ru with uk pinned yields uk
    probabilities = {"de": 0.5, "ru": 0.3, "uk": 0.2}
    assert choose_in_set("de", 0.5, ("ru", "uk"), "uk", probabilities) == ("uk", 1.0)
    # a pin outside the set is no pin for the choice
    assert choose_in_set("ru", 0.3, ("ru", "en"), "uk") == ("ru", 0.3)


def test_without_probabilities_the_pin_in_the_set_or_the_sets_first():
    assert choose_in_set("de", 0.0, ("ru", "en"), "en") == ("en", 0.0)
    assert choose_in_set("de", 0.0, ("ru", "en"), "uk") == ("ru", 0.0)
    assert choose_in_set("de", 0.0, ("ru", "en"), None) == ("ru", 0.0)


# -- engines --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def names_voice():
    return audio.decode(FIXTURES / "names.ogg")


def test_the_local_engine_hears_names_with_a_vocabulary_it_misses_without(engine, names_voice):
    assert names_in(engine.transcribe(names_voice).text) == set()
    heard = engine.transcribe(audio.open_recording(FIXTURES / "names.ogg"), vocabulary=NAMES)
    assert names_in(heard.text) == set(NAMES), heard.text


def test_the_batched_path_takes_the_vocabulary_too(engine, names_voice):
    batched = FasterWhisperTranscriber(
        engine._model, device="cpu", model_name=engine.model_name, beam_size=engine.beam_size, batch_size=2
    )
    assert len(names_in(batched.transcribe(names_voice, vocabulary=NAMES).text)) >= 4


class Server:
    """An OpenAI-compatible server in process: says ``language`` unless asked for one."""

    def __init__(self, language):
        self.language, self.asked, self.prompts = language, [], []

    def ping(self, timeout):
        pass

    def transcribe(self, samples, language, prompt=""):
        self.asked.append(language)
        self.prompts.append(prompt)
        return Heard(language or self.language, None, (Segment(0.0, len(samples) / 16_000, "words"),))


def remote(server):
    pool = EndpointPool([Endpoint("http://s:8000/v1", server)])
    return RemoteTranscriber(pool, kind="openai", model_name="m")


def test_the_remote_engine_sends_the_vocabulary_and_resends_outside_the_set(names_voice):
    server = Server("de")
    result = remote(server).transcribe(names_voice, languages=("ru", "en"), prefer="en", vocabulary=NAMES)
    assert result.language == "en"
    assert server.asked == [None, "en"]  # heard as de, outside the set: again in the pinned en
    assert server.prompts == [", ".join(NAMES)] * 2
    server = Server("en")
    assert remote(server).transcribe(names_voice, languages=("ru", "en")).language == "en"
    assert server.asked == [None] and server.prompts == [""]  # inside the set, no vocabulary: as before


def test_the_default_stream_choosing_keeps_to_the_set():
    class Says(Transcriber):  # an engine with only stream(): the base class's default choosing
        def __init__(self):
            self.asked = []

        def stream(self, samples, language=None):
            self.asked.append(language)
            segment = Segment(0.0, 1.0, "words")
            return StreamInfo(language or "de", 0.0 if language is None else 1.0, 1.0), iter([segment])

    engine = Says()
    result = engine.transcribe(np.zeros(16_000, dtype=np.float32), languages=("uk", "ru"), vocabulary=NAMES)
    assert (result.language, engine.asked) == ("uk", [None, "uk"])


def test_a_voice_outside_the_set_stays_inside_it_multilingual(request):
    """English detected by the multilingual base model, with ru,uk allowed: one of them."""
    try:
        base = request.getfixturevalue("base_engine")  # tests/models.py (the bench branch)
    except pytest.FixtureLookupError:
        pytest.skip("the multilingual base model fixture (base_engine) is not in this tree")
    free = base.transcribe(audio.open_recording(FIXTURES / "hello.ogg"))
    held = base.transcribe(audio.open_recording(FIXTURES / "hello.ogg"), languages=("ru", "uk"))
    assert free.language == "en" and held.language in ("ru", "uk"), (free.language, held.language)


# -- the CLI ----------------------------------------------------------------------------


def test_transcribe_honours_vocabulary_and_refuses_a_bad_one(model_path):
    from .test_cli import voicebot

    done = voicebot(
        "transcribe", str(FIXTURES / "names.ogg"), "--model", model_path, env={"VOCABULARY": ",".join(NAMES)}
    )
    assert done.returncode == 0, done.stderr
    assert names_in(done.stdout) == set(NAMES), done.stdout
    bad = voicebot("transcribe", str(FIXTURES / "names.ogg"), env={"WHISPER_LANGUAGES": "ru;en"})
    (line,) = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and line.startswith("voicebot: configuration error: WHISPER_LANGUAGES: "), line


def test_doctor_says_wyoming_has_no_vocabulary(tmp_path):
    from .test_cli import voicebot

    env = {"WHISPER_ENGINE": "wyoming", "WHISPER_URL": "tcp://127.0.0.1:9", "WHISPER_TIMEOUT_SECONDS": "1"}
    done = voicebot("doctor", env={**env, "VOCABULARY": "Siobhan"}, tmp_path=tmp_path)
    assert "Wyoming has no field for it" in done.stdout, done.stdout
    assert "Wyoming has no field" not in voicebot("doctor", env=env, tmp_path=tmp_path).stdout


# -- through the pipeline, in memory ------------------------------------------------------


class Hears(Transcriber):
    """Says "words" in the first language allowed, and keeps what each voice was given."""

    def __init__(self):
        self.given = []

    def stream(self, samples, language=None):
        return StreamInfo(language or "en", 1.0, 1.0), iter([Segment(0.0, 1.0, "words")])

    def stream_choosing(self, samples, language=None, *, prefer=None, languages=(), vocabulary=()):
        self.given.append({"prefer": prefer, "languages": languages, "vocabulary": vocabulary})
        return self.stream(samples, language)


async def test_the_chats_commands_and_settings_reach_the_engine(tmp_path):
    from .test_commands import command
    from .test_pipeline import make, run

    engine = Hears()
    env = {"VOCABULARY": "Grafana", "VOCABULARY_CONTACTS": "true", "WHISPER_LANGUAGES": "ru,uk"}
    pipeline, chat, _ = make(tmp_path, engine, {1: "hello.ogg", 2: "hello.ogg"}, **env)
    chat.contact_names = ["Bob Tbilisi"]
    vocab, lang, help_ = command(10, ".vocab add Siobhan Llandudno"), command(11, ".lang en,de"), command(12, ".help")

    def voice(message_id, chat_id):
        media = Media(MediaKind.VOICE, size=20_000, duration=4, document_id=900 + message_id)
        return chat.add(IncomingMessage(chat_id, message_id, ChatKind.PRIVATE, 5, False, media, sender_name="Alice"))

    await run(pipeline, chat.add(vocab), chat.add(lang), chat.add(help_), voice(1, vocab.chat_id), voice(2, 77))
    assert ".vocab add" in chat.messages[12] and ".lang ru,en" in chat.messages[12]
    assert chat.messages[10] == say("vocab_added", "en", prefix=".", terms="Siobhan, Llandudno")
    assert chat.messages[11] == say("langs_set", "en", prefix=".", languages="en, de")
    here, other = engine.given
    assert here == {
        "prefer": None,
        "languages": ("en", "de"),  # the chat's set wins over WHISPER_LANGUAGES
        "vocabulary": ("Siobhan", "Llandudno", "Alice", "Grafana", "Bob Tbilisi"),
    }
    assert other == {"prefer": None, "languages": ("ru", "uk"), "vocabulary": ("Alice", "Grafana", "Bob Tbilisi")}


def test_an_openai_compatible_server_hears_the_names_through_the_prompt(openai_server, names_voice):
    """faster-whisper-server reads the request's ``prompt`` as Whisper's initial prompt."""
    from voicebot.engine.loader import load_engine

    remote_settings = settings(WHISPER_ENGINE="openai", WHISPER_URL=openai_server.url, WHISPER_TIMEOUT_SECONDS="600")
    engine = load_engine(remote_settings)
    try:
        assert len(names_in(engine.transcribe(names_voice).text)) <= 1
        heard = engine.transcribe(names_voice, vocabulary=NAMES).text
    finally:
        engine.close()
    assert names_in(heard) == set(NAMES), heard
