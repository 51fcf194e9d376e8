"""Settings: read from the environment (and ``.env``) and validated in one place.

Every setting is documented in ``.env.example`` and docs/configuration.md.
A bad value raises :class:`ConfigError` naming the setting; the CLI turns it into
one line on stderr and exit code 2.

Example::

    settings = load_settings({"API_ID": "12345", "API_HASH": "0123456789abcdef0123456789abcdef"})
    settings.whisper_model   # 'small'
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from voicebot.errors import ConfigError

ENGINES = ("local", "openai", "wyoming")
FALLBACKS = ("none", "local")
DEVICES = ("auto", "cpu", "cuda")
COMPUTE_TYPES = ("auto", "default", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16")
COMPUTE_TYPES += ("bfloat16", "float32")
UI_LANGUAGES = ("en", "ru")
NO_SPEECH_ACTIONS = ("reply", "silent")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """All of voicebot's configuration. Build it with :func:`load_settings`."""

    api_id: int = 0
    api_hash: str = ""
    data_dir: Path = Path("data")
    temp_dir: Path = Path("temp")
    model_cache_dir: Path = Path("data/models")
    session_name: str = "voicebot"
    log_level: str = "INFO"

    whisper_engine: str = "local"  # "openai" / "wyoming": audio is sent to WHISPER_URL
    whisper_urls: tuple[str, ...] = ()
    whisper_api_key: str = field(default="", repr=False)  # secret: scrubbed from logs
    whisper_fallback: str = "none"  # "local": transcribe here while every server is down
    whisper_fallback_model: str = "small"
    whisper_timeout_s: float = 60.0  # one request (one chunk of at most ~30 s of audio)
    oneshot_timeout_s: float = 120.0  # transcribe/doctor: how long to wait for any server
    whisper_model: str = "small"  # remote engines: the model name sent to the server
    whisper_device: str = "auto"
    whisper_compute_type: str = "auto"
    whisper_language: str | None = None
    whisper_languages: tuple[str, ...] = ()  # detection stays inside this set; () = any language
    vocabulary: tuple[str, ...] = ()  # names and terms recognition is biased toward, every chat
    vocabulary_contacts: bool = False  # the owner's contacts' names join each chat's vocabulary
    whisper_beam_size: int = 5
    whisper_threads: int = 0
    whisper_vad: bool = True
    whisper_batch_size: int = 0  # 0: 8 on CUDA, 1 (sequential) on CPU

    max_concurrent_jobs: int = 0  # 0: 1 on CPU, 2 on CUDA (decided once the device is known)
    queue_size: int = 100

    transcribe_voice: bool = True
    transcribe_video_notes: bool = True
    transcribe_audio: bool = False
    transcribe_video: bool = False
    transcribe_private: bool = True
    transcribe_groups: bool = False
    transcribe_channels: bool = False
    transcribe_outgoing: bool = False
    allow_chats: frozenset[str] = field(default_factory=frozenset)
    deny_chats: frozenset[str] = field(default_factory=frozenset)
    max_file_mb: float = 50.0
    max_duration_s: float = 3600.0

    on_no_speech: str = "reply"
    ui_language: str = "en"

    command_prefix: str = "."
    react_to_transcribe: str = "✍"  # the owner's reaction that asks for a transcript; "" = off
    reaction_poll_s: float = 45.0  # how often unanswered recent recordings' reactions are asked for
    deliver_to: str = "chat"  # "chat", "saved" (Saved Messages), or a chat id / @username
    caption_own_voices: bool = True
    progress_interval_s: float = 3.0  # 0: no live progress edits
    attach_txt_above: int = 3000  # characters; 0: never attach a .txt
    backfill_hours: float = 24.0  # 0: no backfill
    backfill_per_chat: int = 20

    heartbeat_s: float = 30.0  # how often the heartbeat file is written (read by `voicebot health`)
    stuck_job_s: float = 600.0  # a job past max(this, stuck_job_factor × its audio) withholds it
    stuck_job_factor: float = 10.0
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_host: str = "127.0.0.1"  # loopback unless told otherwise
    summary_above_seconds: float = 120.0  # with an LLM: longer voices get a summary; 0 = only .sum
    llm_cleanup: bool = False  # with an LLM: a punctuation/filler pass, the raw text kept

    llm_url: str = ""  # "": no LLM, no text leaves this machine; else an OpenAI-compatible API
    llm_model: str = ""  # required with llm_url
    llm_api_key: str = field(default="", repr=False)  # secret: scrubbed from logs
    llm_timeout_seconds: float = 60.0  # one call to the LLM, its one retry included

    @property
    def remote(self) -> bool:
        """Audio leaves this machine: it is sent to the servers in WHISPER_URL."""
        return self.whisper_engine != "local"

    @property
    def private_delivery(self) -> bool:
        """Transcripts go to Saved Messages or a log chat instead of the voice's chat."""
        return self.deliver_to != "chat"

    @property
    def session_path(self) -> Path:
        """Telethon's SQLite session (Telethon appends ``.session``)."""
        return self.data_dir / self.session_name

    @property
    def session_file(self) -> Path:
        return self.data_dir / f"{self.session_name}.session"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def load_settings(
    env: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env", require_telegram: bool = True
) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ``) over ``.env``.

    Real environment variables win over ``.env`` entries, as in Docker's ``env_file``.
    ``require_telegram=False`` skips API_ID/API_HASH (``transcribe`` needs neither).

    Example::

        s = load_settings({"WHISPER_MODEL": "tiny"}, dotenv_path=None, require_telegram=False)
        assert s.whisper_model == "tiny"
    """
    merged: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ if env is None else env)
    return _parse(_Reader(merged), require_telegram)


class _Reader:
    """Typed getters over the raw strings; every failure names its variable."""

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw

    def str(self, name: str, default: str) -> str:
        value = self.raw.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def int(self, name: str, default: int, minimum: int = 0) -> int:
        text = self.str(name, str(default))
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def float(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        text = self.str(name, str(default))
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero) or value != value:
            raise ConfigError(name, f"must be greater than 0, got {text}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        text = self.raw.get(name)
        if text is None:
            return default
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"must be true or false, got {text!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def chats(self, name: str) -> frozenset[str]:
        """Comma-separated chat ids (-100123…) or @usernames, normalised for matching."""
        items = set()
        for item in self.str(name, "").split(","):
            item = item.strip()
            if not item:
                continue
            if re.fullmatch(r"-?\d+", item):
                items.add(str(int(item)))
            elif re.fullmatch(r"@?[A-Za-z][A-Za-z0-9_]{3,31}", item):
                items.add("@" + item.lstrip("@").lower())
            else:
                raise ConfigError(name, f"{item!r} is neither a chat id nor a @username")
        return frozenset(items)


def _reaction(text: str) -> str:
    """One emoji as Telegram spells reactions (without the U+FE0F variation selector: "✍", "❤"),
    or "" for off."""
    if text.lower() in ("off", "none", "no", "false", "0"):
        return ""
    emoji = text.replace("\ufe0f", "")
    # One symbol, or several joined by ZWJ (❤‍🔥, 🤷‍♂), each maybe modified (skin tone, marks).
    parts = [[unicodedata.category(c) for c in part] for part in emoji.split("\u200d")]
    if not (len(emoji) <= 8 and all(p.count("So") == 1 and set(p) <= {"So", "Sk", "Mn", "Me"} for p in parts)):
        raise ConfigError(
            "REACT_TO_TRANSCRIBE",
            f"must be one emoji Telegram offers as a reaction (e.g. ✍ 👀 🤔), or off; got {text!r}",
        )
    return emoji


def _parse(r: _Reader, require_telegram: bool) -> Settings:
    api_id, api_hash = 0, ""
    if require_telegram:
        if not r.str("API_ID", ""):
            raise ConfigError("API_ID", "is not set; get it at https://my.telegram.org (API development tools)")
        api_id = r.int("API_ID", 0, minimum=1)
        api_hash = r.str("API_HASH", "")
        if not api_hash:
            raise ConfigError("API_HASH", "is not set; get it at https://my.telegram.org (API development tools)")
        if not re.fullmatch(r"[0-9a-fA-F]{32}", api_hash):
            raise ConfigError("API_HASH", "must be the 32 hexadecimal characters from my.telegram.org")

    data_dir = Path(r.str("DATA_DIR", "data"))
    session_name = r.str("SESSION_NAME", "voicebot")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", session_name) or session_name.startswith("."):
        raise ConfigError("SESSION_NAME", "may only contain letters, digits, '_', '-' and '.'")
    language = r.str("WHISPER_LANGUAGE", "").lower()
    if language in ("auto", ""):
        language_or_none = None
    elif re.fullmatch(r"[a-z]{2,3}", language):
        language_or_none = language
    else:
        raise ConfigError(
            "WHISPER_LANGUAGE", f"must be a language code like en, ru, de (or empty for auto); got {language!r}"
        )
    languages = _languages(r.str("WHISPER_LANGUAGES", ""))
    if languages is None:
        raise ConfigError(
            "WHISPER_LANGUAGES", "must be comma-separated language codes like ru,uk,en (or empty for any)"
        )
    vocabulary = tuple(dict.fromkeys(t.strip() for t in r.str("VOCABULARY", "").split(",") if t.strip()))
    if any(len(t) > 64 for t in vocabulary):
        raise ConfigError("VOCABULARY", "each comma-separated term must be at most 64 characters")
    prefix = r.str("COMMAND_PREFIX", ".")
    if len(prefix) > 3 or any(c.isalnum() or c.isspace() for c in prefix):
        raise ConfigError("COMMAND_PREFIX", f"must be 1-3 punctuation characters like . or !, got {prefix!r}")
    reaction = _reaction(r.str("REACT_TO_TRANSCRIBE", "✍"))
    deliver_to = r.str("DELIVER_TO", "chat")
    if deliver_to.lower() in ("chat", "saved"):
        deliver_to = deliver_to.lower()
    else:
        targets = r.chats("DELIVER_TO")
        if len(targets) != 1:
            raise ConfigError("DELIVER_TO", "must be chat, saved, or one chat id / @username")
        (deliver_to,) = targets
    engine = r.choice("WHISPER_ENGINE", "local", ENGINES)
    urls = _urls(r, engine)
    heartbeat = r.float("HEARTBEAT_SECONDS", 30.0)
    if heartbeat > 60:  # the image's health check allows 120 s: two beats
        raise ConfigError(
            "HEARTBEAT_SECONDS", f"must be at most 60 (health --max-age 120 allows two), got {heartbeat:g}"
        )
    llm_url = _llm_url(r)
    level = r.str("LOG_LEVEL", "INFO").upper()
    if level not in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR; got {level!r}")

    return Settings(
        api_id=api_id,
        api_hash=api_hash,
        data_dir=data_dir,
        temp_dir=Path(r.str("TEMP_DIR", "temp")),
        model_cache_dir=Path(r.str("WHISPER_CACHE_DIR", str(data_dir / "models"))),
        session_name=session_name,
        log_level=level,
        whisper_engine=engine,
        whisper_urls=urls,
        whisper_api_key=r.str("WHISPER_API_KEY", ""),
        whisper_fallback=r.choice("WHISPER_FALLBACK", "none", FALLBACKS),
        whisper_fallback_model=r.str("WHISPER_FALLBACK_MODEL", "small"),
        whisper_timeout_s=r.float("WHISPER_TIMEOUT_SECONDS", 60.0),
        oneshot_timeout_s=r.float("ONESHOT_TIMEOUT_SECONDS", 120.0),
        # Remote: empty = the server's own default (the OpenAI client then sends whisper-1).
        whisper_model=r.str("WHISPER_MODEL", "small" if engine == "local" else ""),
        whisper_device=r.choice("WHISPER_DEVICE", "auto", DEVICES),
        whisper_compute_type=r.choice("WHISPER_COMPUTE_TYPE", "auto", COMPUTE_TYPES),
        whisper_language=language_or_none,
        whisper_languages=languages,
        vocabulary=vocabulary,
        vocabulary_contacts=r.bool("VOCABULARY_CONTACTS", False),
        whisper_beam_size=r.int("WHISPER_BEAM_SIZE", 5, minimum=1),
        whisper_threads=r.int("WHISPER_THREADS", 0),
        whisper_vad=r.bool("WHISPER_VAD", True),
        whisper_batch_size=r.int("WHISPER_BATCH_SIZE", 0),
        max_concurrent_jobs=r.int("MAX_CONCURRENT_JOBS", 0),
        queue_size=r.int("QUEUE_SIZE", 100, minimum=1),
        transcribe_voice=r.bool("TRANSCRIBE_VOICE", True),
        transcribe_video_notes=r.bool("TRANSCRIBE_VIDEO_NOTES", True),
        transcribe_audio=r.bool("TRANSCRIBE_AUDIO", False),
        transcribe_video=r.bool("TRANSCRIBE_VIDEO", False),
        transcribe_private=r.bool("TRANSCRIBE_PRIVATE", True),
        transcribe_groups=r.bool("TRANSCRIBE_GROUPS", False),
        transcribe_channels=r.bool("TRANSCRIBE_CHANNELS", False),
        transcribe_outgoing=r.bool("TRANSCRIBE_OUTGOING", False),
        allow_chats=r.chats("ALLOW_CHATS"),
        deny_chats=r.chats("DENY_CHATS"),
        max_file_mb=r.float("MAX_FILE_MB", 50.0),
        max_duration_s=r.float("MAX_DURATION_SECONDS", 3600.0),
        on_no_speech=r.choice("ON_NO_SPEECH", "reply", NO_SPEECH_ACTIONS),
        ui_language=r.choice("BOT_LANGUAGE", "en", UI_LANGUAGES),
        command_prefix=prefix,
        react_to_transcribe=reaction,
        reaction_poll_s=r.float("REACTION_POLL_SECONDS", 45.0),
        deliver_to=deliver_to,
        caption_own_voices=r.bool("CAPTION_OWN_VOICES", True),
        progress_interval_s=r.float("PROGRESS_INTERVAL_SECONDS", 3.0, allow_zero=True),
        attach_txt_above=r.int("ATTACH_TXT_ABOVE", 3000),
        backfill_hours=r.float("BACKFILL_HOURS", 24.0, allow_zero=True),
        backfill_per_chat=r.int("BACKFILL_PER_CHAT", 20),
        heartbeat_s=heartbeat,
        summary_above_seconds=r.float("SUMMARY_ABOVE_SECONDS", 120.0, allow_zero=True),
        llm_cleanup=r.bool("LLM_CLEANUP", False),
        stuck_job_s=r.float("STUCK_JOB_SECONDS", 600.0),
        stuck_job_factor=r.float("STUCK_JOB_FACTOR", 10.0),
        metrics_port=_metrics_port(r),
        metrics_host=_metrics_host(r),
        llm_url=llm_url,
        llm_model=r.str("LLM_MODEL", ""),
        llm_api_key=r.str("LLM_API_KEY", ""),
        llm_timeout_seconds=r.float("LLM_TIMEOUT_SECONDS", 60.0),
    )


def _metrics_port(r: _Reader) -> int:
    """METRICS_PORT: empty (the default) serves no metrics; otherwise a TCP port."""
    if not r.str("METRICS_PORT", ""):
        return 0
    port = r.int("METRICS_PORT", 0)
    if not 1 <= port <= 65535:
        raise ConfigError("METRICS_PORT", f"must be a TCP port from 1 to 65535 (or empty for off), got {port}")
    return port


def _metrics_host(r: _Reader) -> str:
    """METRICS_HOST: the address the metrics endpoint listens on, an IP address or a host name."""
    host = r.str("METRICS_HOST", "127.0.0.1")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if len(host) > 253 or not re.fullmatch(
        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", host
    ):
        raise ConfigError(
            "METRICS_HOST", f"must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got {host!r}"
        )
    return host


def _languages(text: str) -> tuple[str, ...] | None:
    """``ru, UK,en`` → ``('ru', 'uk', 'en')`` (order kept, duplicates dropped); ``None`` if any
    item is not a language code. Empty or ``auto``: ``()``, any language.

    Example::

        _languages("ru,uk,en")   # ('ru', 'uk', 'en')
    """
    items = [item.strip().lower() for item in text.split(",") if item.strip()]
    if items in ([], ["auto"]):
        return ()
    if not all(re.fullmatch(r"[a-z]{2,3}", item) for item in items):
        return None
    return tuple(dict.fromkeys(items))


def _urls(r: _Reader, engine: str) -> tuple[str, ...]:
    """WHISPER_URL: comma-separated endpoints, http(s)://host[:port]/path for the OpenAI-compatible
    API, tcp://host:port for Wyoming. Ignored by the local engine."""
    if engine == "local":
        return ()
    items = [item.strip() for item in r.str("WHISPER_URL", "").split(",") if item.strip()]
    if not items:
        example = "http://gpu:8000/v1" if engine == "openai" else "tcp://homeassistant.local:10300"
        raise ConfigError(
            "WHISPER_URL", f"is not set; WHISPER_ENGINE={engine} needs at least one server, e.g. {example}"
        )
    schemes = ("http", "https") if engine == "openai" else ("tcp",)
    for item in items:
        parts = _url("WHISPER_URL", item, schemes, f"WHISPER_ENGINE={engine}", "WHISPER_API_KEY")
        if engine == "wyoming" and (parts.port is None or parts.path not in ("", "/")):
            raise ConfigError("WHISPER_URL", f"{item!r}: a Wyoming server is tcp://host:port")
    return tuple(items)


def _llm_url(r: _Reader) -> str:
    """LLM_URL: empty (no LLM) or an OpenAI-compatible API's base URL; LLM_MODEL then required."""
    url = r.str("LLM_URL", "")
    if url:
        _url("LLM_URL", url, ("http", "https"), "an OpenAI-compatible API", "LLM_API_KEY")
        if not r.str("LLM_MODEL", ""):
            raise ConfigError("LLM_MODEL", "is not set; LLM_URL needs the name of the model it serves, e.g. llama3.2")
    return url


def _url(name: str, item: str, schemes: tuple[str, ...], what: str, key: str):
    """``item`` split, or the one line naming ``name``: unparseable, another scheme, no host,
    credentials (they belong in ``key``), a ?query or #fragment."""
    try:
        parts = urlsplit(item)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise ConfigError(name, f"{item!r} is not a valid URL") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(name, f"{item!r}: {what} needs {' or '.join(s + '://host' for s in schemes)}…")
    if parts.username or parts.password:
        raise ConfigError(name, f"{parts.scheme}://{parts.hostname}…: put credentials in {key}, not in the URL")
    if parts.query or parts.fragment:
        raise ConfigError(name, f"{item!r}: no ?query or #fragment, just the API's base URL")
    return parts
