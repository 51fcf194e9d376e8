from pathlib import Path

import pytest

from voicebot.config import load_settings
from voicebot.errors import ConfigError

GOOD = {"API_ID": "12345", "API_HASH": "0123456789abcdef0123456789abcdef"}


def load(**env):
    return load_settings({**GOOD, **env}, dotenv_path=None)


def test_defaults():
    s = load()
    assert s.api_id == 12345
    assert s.whisper_model == "small"
    assert s.whisper_device == "auto"
    assert s.whisper_language is None
    assert s.transcribe_voice and s.transcribe_video_notes and s.transcribe_private
    assert not (s.transcribe_audio or s.transcribe_video or s.transcribe_groups or s.transcribe_outgoing)
    assert s.model_cache_dir == Path("data/models")
    assert s.session_path == Path("data/voicebot")


@pytest.mark.parametrize(
    "env, setting",
    [
        ({"API_ID": ""}, "API_ID"),
        ({"API_ID": "abc"}, "API_ID"),
        ({"API_ID": "0"}, "API_ID"),
        ({"API_HASH": ""}, "API_HASH"),
        ({"API_HASH": "short"}, "API_HASH"),
        ({"WHISPER_DEVICE": "tpu"}, "WHISPER_DEVICE"),
        ({"WHISPER_COMPUTE_TYPE": "int3"}, "WHISPER_COMPUTE_TYPE"),
        ({"WHISPER_LANGUAGE": "english!"}, "WHISPER_LANGUAGE"),
        ({"WHISPER_BEAM_SIZE": "0"}, "WHISPER_BEAM_SIZE"),
        ({"MAX_CONCURRENT_JOBS": "-1"}, "MAX_CONCURRENT_JOBS"),
        ({"TRANSCRIBE_GROUPS": "maybe"}, "TRANSCRIBE_GROUPS"),
        ({"MAX_FILE_MB": "-5"}, "MAX_FILE_MB"),
        ({"ALLOW_CHATS": "@a b"}, "ALLOW_CHATS"),
        ({"ON_NO_SPEECH": "shout"}, "ON_NO_SPEECH"),
        ({"BOT_LANGUAGE": "fr"}, "BOT_LANGUAGE"),
        ({"SESSION_NAME": "../evil"}, "SESSION_NAME"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"REACT_TO_TRANSCRIBE": "yes please"}, "REACT_TO_TRANSCRIBE"),
        ({"REACT_TO_TRANSCRIBE": "👍👍"}, "REACT_TO_TRANSCRIBE"),
        ({"LLM_URL": "127.0.0.1:11434", "LLM_MODEL": "m"}, "LLM_URL"),
        ({"LLM_URL": "ftp://llm/v1", "LLM_MODEL": "m"}, "LLM_URL"),
        ({"LLM_URL": "http://user:pw@llm/v1", "LLM_MODEL": "m"}, "LLM_URL"),
        ({"LLM_URL": "http://llm:99999/v1", "LLM_MODEL": "m"}, "LLM_URL"),
        ({"LLM_URL": "http://llm/v1?key=x", "LLM_MODEL": "m"}, "LLM_URL"),
        ({"LLM_URL": "http://llm/v1"}, "LLM_MODEL"),
        ({"LLM_URL": "http://llm/v1", "LLM_MODEL": "m", "LLM_TIMEOUT_SECONDS": "0"}, "LLM_TIMEOUT_SECONDS"),
        ({"LLM_TIMEOUT_SECONDS": "soon"}, "LLM_TIMEOUT_SECONDS"),
    ],
)
def test_bad_values_name_the_setting(env, setting):
    with pytest.raises(ConfigError) as caught:
        load(**env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting + ":")


def test_values_are_parsed():
    s = load(
        WHISPER_LANGUAGE="RU",
        TRANSCRIBE_GROUPS="yes",
        ALLOW_CHATS="-100123, @Some_Chat ,42",
        MAX_FILE_MB="2.5",
        WHISPER_DEVICE="CPU",
        DATA_DIR="/srv/vb",
    )
    assert s.whisper_language == "ru"
    assert s.transcribe_groups is True
    assert s.allow_chats == {"-100123", "@some_chat", "42"}
    assert s.max_file_bytes == int(2.5 * 1024 * 1024)
    assert s.whisper_device == "cpu"
    assert s.model_cache_dir == Path("/srv/vb/models")


def test_the_reaction_is_spelled_as_telegram_spells_reactions():
    assert load().react_to_transcribe == "✍"
    assert load(REACT_TO_TRANSCRIBE="✍️").react_to_transcribe == "✍"  # U+FE0F dropped: Telegram's "✍"
    assert load(REACT_TO_TRANSCRIBE="❤️‍🔥").react_to_transcribe == "❤\u200d🔥"
    assert load(REACT_TO_TRANSCRIBE="off").react_to_transcribe == ""


def test_auto_language_means_detect():
    assert load(WHISPER_LANGUAGE="auto").whisper_language is None


def test_transcribe_needs_no_telegram_credentials():
    s = load_settings({"WHISPER_MODEL": "tiny"}, dotenv_path=None, require_telegram=False)
    assert s.whisper_model == "tiny" and s.api_id == 0


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("API_ID=1\nAPI_HASH=0123456789abcdef0123456789abcdef\nWHISPER_MODEL=base\n")
    s = load_settings({"WHISPER_MODEL": "tiny"}, dotenv_path=dotenv)
    assert (s.api_id, s.whisper_model) == (1, "tiny")


def test_every_setting_is_documented_everywhere():
    """config.py, .env.example, docs/configuration.md and the README name the same settings."""
    import re

    root = Path(__file__).parent.parent
    read = set(re.findall(r'r\.\w+\("([A-Z_]+)"', (root / "voicebot/config.py").read_text())) | {"API_ID", "API_HASH"}
    example = set(re.findall(r"^([A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    docs = set(re.findall(r"^\| `([A-Z_]+)`", (root / "docs/configuration.md").read_text(), re.M))
    readme = set(re.findall(r"`([A-Z][A-Z_]{3,})`", (root / "README.md").read_text()))
    assert example == read
    assert docs == read
    assert read <= readme, sorted(read - readme)


def test_no_llm_unless_its_url_is_set():
    s = load(LLM_MODEL="llama3.2", LLM_API_KEY="sk-unused")  # a model alone sends nothing anywhere
    assert s.llm_url == "" and s.llm_timeout_seconds == 60.0


def test_llm_settings_are_parsed_and_the_key_is_hidden():
    s = load(
        LLM_URL=" http://127.0.0.1:11434 ", LLM_MODEL="llama3.2", LLM_API_KEY="sk-secret-1", LLM_TIMEOUT_SECONDS="7.5"
    )
    assert (s.llm_url, s.llm_model, s.llm_api_key, s.llm_timeout_seconds) == (
        "http://127.0.0.1:11434",
        "llama3.2",
        "sk-secret-1",
        7.5,
    )
    assert "sk-secret-1" not in repr(s)


def test_a_bad_llm_setting_is_one_line_and_exit_2(capsys, monkeypatch):
    from voicebot.cli import main

    monkeypatch.setenv("LLM_URL", "http://127.0.0.1:11434")
    monkeypatch.delenv("LLM_MODEL", raising=False)
    assert main(["--env-file", "/nonexistent", "transcribe", "nothing.ogg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LLM_MODEL" in err and "Traceback" not in err
