"""The local engine: faster-whisper on CPU or CUDA. The only place that imports faster_whisper
and ctranslate2 (:mod:`voicebot.engine.loader` imports this package lazily: the remote-only
image has neither).

- :mod:`.whisper`: :class:`FasterWhisperTranscriber`, chunks two at a time or in batches, its guards
- :mod:`.window`: one window: encode, decode in one pass, time the words, split sentences
- :mod:`.batched`: chunks in batches through ``BatchedInferencePipeline`` (CUDA's default)
- :mod:`.models`: device choice, model resolution (a name, a repo id or a directory), loading
- :mod:`.vad`: Silero VAD as a streaming speech detector

Example::

    engine = load_local_engine(settings)
    engine.transcribe(audio.open_recording("voice.ogg")).text
"""

from .models import find_cached_model, pick_device, resolve_model
from .vad import SileroDetector, silero_detector
from .whisper import FasterWhisperTranscriber, load_local_engine

__all__ = [
    "FasterWhisperTranscriber",
    "SileroDetector",
    "find_cached_model",
    "load_local_engine",
    "pick_device",
    "resolve_model",
    "silero_detector",
]
