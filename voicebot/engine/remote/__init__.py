"""The remote engine: transcription on speech servers (OpenAI-compatible or Wyoming).

- :mod:`.transcriber`: :class:`RemoteTranscriber`, chunks in parallel over the servers, in order
- :mod:`.pool`: the endpoint pool (least busy healthy server, benching, probing, Retry-After)
- :mod:`.wire`: what every protocol carries (PCM out, :class:`~.wire.Heard` back, language codes)
- :mod:`.openai_client`: the only importer of ``openai``; :mod:`.wyoming_client`: of ``wyoming``

It never imports the local engine: the speech detector and the local fallback are passed in
(:mod:`voicebot.engine.loader` does that).

Example::

    engine = build(settings, detector=EnergyDetector, fallback=None)   # WHISPER_ENGINE=openai|wyoming
    engine.transcribe(samples, prefer="uk").text
"""

from __future__ import annotations

from collections.abc import Callable

from voicebot.audio.chunking import SpeechDetector
from voicebot.config import Settings
from voicebot.engine.base import Transcriber

from .openai_client import OpenAIClient
from .pool import Endpoint, EndpointPool
from .transcriber import RemoteTranscriber
from .wyoming_client import WyomingClient

__all__ = ["RemoteTranscriber", "build"]


def build(
    settings: Settings,
    *,
    detector: Callable[[], SpeechDetector],
    fallback: Callable[[], Transcriber] | None,
    one_shot: bool = False,
) -> RemoteTranscriber:
    """The remote engine for ``settings`` (WHISPER_ENGINE=openai or wyoming). Checks nothing
    on the network: an unreachable server is waited for (or fallen back from), not fatal;
    ``one_shot`` (``transcribe``) waits at most ONESHOT_TIMEOUT_SECONDS for one."""
    if settings.whisper_engine == "openai":
        clients = [
            OpenAIClient(
                url, api_key=settings.whisper_api_key, model=settings.whisper_model, timeout=settings.whisper_timeout_s
            )
            for url in settings.whisper_urls
        ]
    else:
        clients = [
            WyomingClient(url, model=settings.whisper_model, timeout=settings.whisper_timeout_s)
            for url in settings.whisper_urls
        ]
    pool = EndpointPool(
        [Endpoint(url, client) for url, client in zip(settings.whisper_urls, clients)],
        give_up_after=settings.oneshot_timeout_s if one_shot else None,
    )
    return RemoteTranscriber(
        pool, kind=settings.whisper_engine, model_name=settings.whisper_model, fallback=fallback, detector=detector
    )
