"""The one module that names the engines: it loads what ``WHISPER_ENGINE`` says and wires the
remote engine's helpers (the speech detector, the local fallback) into it.

The local engine is imported lazily: the remote-only image has no faster-whisper, and there
the energy detector listens instead of Silero.

Example::

    engine = load_engine(load_settings(require_telegram=False))
    servers = load_remote_engine(settings, fallback=False)   # doctor: the servers alone
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType

from loguru import logger

from voicebot.audio.chunking import EnergyDetector, SpeechDetector
from voicebot.config import Settings
from voicebot.engine import remote
from voicebot.engine.base import Transcriber
from voicebot.errors import ConfigError


def load_engine(settings: Settings, *, one_shot: bool = False) -> Transcriber:
    """The engine ``WHISPER_ENGINE`` names, ready to use. Only the local engine imports
    faster-whisper, and only when chosen: a remote-only image has none. ``one_shot`` (a
    command that must end): a remote engine waits at most ONESHOT_TIMEOUT_SECONDS for a
    server, then raises :class:`~voicebot.engine.remote.pool.AllDown`; the bot waits forever.

    Raises :class:`~voicebot.errors.ModelError` when the engine cannot be set up, and
    :class:`~voicebot.errors.ConfigError` when this installation lacks the local engine.
    """
    if settings.whisper_engine == "local":
        local = _local()
        if local is None:  # the remote-only image: no faster-whisper, no CTranslate2
            raise ConfigError(
                "WHISPER_ENGINE",
                "local needs faster-whisper, which this installation lacks; "
                "set WHISPER_ENGINE=openai or wyoming and WHISPER_URL",
            )
        return local.load_local_engine(settings)
    engine = load_remote_engine(settings, one_shot=one_shot)
    logger.warning(
        "WHISPER_ENGINE={}: audio is sent to {} for transcription (it leaves this machine)",
        settings.whisper_engine,
        ", ".join(e.name for e in engine.pool.endpoints),
    )
    return engine


def load_remote_engine(
    settings: Settings, *, fallback: bool = True, one_shot: bool = False
) -> remote.RemoteTranscriber:
    """The remote engine for ``settings``; ``fallback=False`` leaves the local fallback out
    (``doctor`` checks only the servers)."""
    local = _local_fallback(settings) if fallback and settings.whisper_fallback == "local" else None
    return remote.build(settings, detector=detector_factory(), fallback=local, one_shot=one_shot)


def detector_factory() -> Callable[[], SpeechDetector]:
    """Silero VAD where the local engine is installed (it hears speech in noise far better),
    else the energy detector: the remote-only image has no model to run."""
    local = _local()
    return local.silero_detector if local is not None else EnergyDetector


def _local() -> ModuleType | None:
    """The local engine's package, or None where faster-whisper is not installed."""
    try:
        from voicebot.engine import local
    except ImportError:
        return None
    return local


def _local_fallback(settings: Settings) -> Callable[[], Transcriber]:
    """The local engine, loaded the first time every server is down (once, thread-safe).
    Its model is resolved (downloaded if need be) now, while the network is there."""
    local = _local()
    if local is None:
        raise ConfigError(
            "WHISPER_FALLBACK",
            "local needs the local engine (faster-whisper), which this "
            "installation does not have (the remote-only image); use none",
        )
    local.resolve_model(settings.whisper_fallback_model, settings.model_cache_dir)
    lock, loaded = threading.Lock(), []

    def get() -> Transcriber:
        with lock:
            if not loaded:
                loaded.append(local.load_local_engine(settings, settings.whisper_fallback_model))
            return loaded[0]

    return get
