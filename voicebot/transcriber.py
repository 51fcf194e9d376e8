"""Speech-to-text engines behind one small interface. The only module that imports faster_whisper.

:class:`Transcriber` is what the rest of voicebot sees; :class:`FasterWhisperTranscriber`
is the local engine. A second engine (say, a remote OpenAI-compatible server) is one
more subclass; nothing on the Telegram side changes.

Example::

    engine = FasterWhisperTranscriber.load("small", cache_dir=Path("data/models"))
    result = engine.transcribe(decode("voice.ogg"))
    print(result.language, result.text)
"""

from __future__ import annotations

import abc
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.utils import available_models, download_model
from faster_whisper.vad import get_vad_model
from loguru import logger

from .audio import SAMPLE_RATE
from .chunking import FRAME
from .config import Settings
from .errors import ModelError, TranscriptionError

# Whisper's own thresholds (openai/whisper transcribe.py). A segment with a high
# no-speech probability is dropped even when the decoder was confident, because on
# noise the decoder is confidently wrong ("Thank you.", "Subtitles by…").
NO_SPEECH_DROP = 0.6
COMPRESSION_RATIO_DROP = 2.4  # gzip ratio above this: a repetition loop, not speech


@dataclass(frozen=True)
class Segment:
    """One recognised stretch of speech, times in seconds from the start."""

    start: float
    end: float
    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0


@dataclass(frozen=True)
class StreamInfo:
    """Known before the first segment: the language and the audio's length."""

    language: str
    language_probability: float
    duration: float


@dataclass(frozen=True)
class Transcription:
    """A finished transcript. ``text`` is empty when no speech was found."""

    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]

    @property
    def no_speech(self) -> bool:
        return not self.text


class Transcriber(abc.ABC):
    """A speech engine with its model loaded once. Thread-safe: jobs call it from workers."""

    #: what the engine really runs on ("cpu" or "cuda"), after any fallback
    device: str = "cpu"
    #: what was loaded, for logs and status
    model_name: str = ""

    @abc.abstractmethod
    def stream(self, samples: np.ndarray, language: str | None = None) -> tuple[StreamInfo, Iterator[Segment]]:
        """Start transcribing 16 kHz mono float32 ``samples``; segments come lazily.

        Example::

            info, segments = engine.stream(samples)
            for segment in segments:
                print(f"[{segment.start:.1f}s] {segment.text}")
        """

    def transcribe(self, samples: np.ndarray, language: str | None = None, *, prefer: str | None = None,
                   on_segment: Callable[[Segment], None] | None = None) -> Transcription:
        """Transcribe ``samples`` to the end.

        ``language`` forces a language. Without it the language is detected, and
        ``prefer`` (a chat's pinned language) wins when detection is unsure between
        confusable languages (see :func:`choose_language`). ``on_segment`` is called
        with each segment as it is recognised, for live progress.

        Example::

            result = engine.transcribe(samples, prefer="uk", on_segment=print)
            result.no_speech   # True for silence or noise
        """
        info, segments = self.stream(samples, language)
        if language is None and prefer:
            chosen = choose_language(info.language, info.language_probability, prefer)
            if chosen != info.language:
                logger.debug("detected {} ({:.2f}); using the chat's {}", info.language,
                             info.language_probability, chosen)
                info, segments = self.stream(samples, chosen)
        kept = []
        for segment in segments:
            kept.append(segment)
            if on_segment:
                on_segment(segment)
        return Transcription(
            text=" ".join(s.text for s in kept if s.text).strip(),
            language=info.language,
            language_probability=info.language_probability,
            duration=info.duration,
            segments=tuple(kept),
        )


# Languages Whisper's detector mixes up; within a group a pinned language beats an unsure guess.
CONFUSABLE = (
    {"uk", "ru", "be", "bg"},
    {"es", "pt", "gl", "ca"},
    {"hr", "sr", "bs", "sl"},
    {"no", "nn", "da", "sv"},
    {"cs", "sk"},
    {"id", "ms", "jw", "su"},
    {"hi", "ur"},
    {"zh", "yue"},
    {"nl", "af"},
)
UNSURE_BELOW = 0.8


def choose_language(detected: str, probability: float, pinned: str | None) -> str:
    """The language to transcribe in, given detection and a chat's pinned language.

    A confident detection is kept (a Russian chat may still get an English voice);
    an unsure one inside the pinned language's confusable group yields the pinned one.

    Example::

        choose_language("ru", 0.55, "uk")   # 'uk'
        choose_language("en", 0.97, "uk")   # 'en'
    """
    if not pinned or detected == pinned or probability >= UNSURE_BELOW:
        return detected
    if any(detected in group and pinned in group for group in CONFUSABLE):
        return pinned
    return detected


class FasterWhisperTranscriber(Transcriber):
    """faster-whisper (CTranslate2) on CPU or CUDA."""

    def __init__(self, model: WhisperModel, *, device: str, model_name: str, beam_size: int = 5,
                 vad: bool = True):
        self._model = model
        self.device = device
        self.model_name = model_name
        self.beam_size = beam_size
        self.vad = vad

    @classmethod
    def load(cls, model: str, *, cache_dir: Path, device: str = "auto", compute_type: str = "auto",
             threads: int = 0, workers: int = 1, beam_size: int = 5, vad: bool = True) -> "FasterWhisperTranscriber":
        """Find or download ``model`` and load it on ``device``, falling back to CPU.

        ``model`` is a name (``small``, ``large-v3``, ``turbo``…), a Hugging Face repo id,
        or a local directory holding a CTranslate2 Whisper model. Raises :class:`ModelError`.

        Example::

            engine = FasterWhisperTranscriber.load("tiny", cache_dir=Path("/models"), device="cpu")
        """
        path = resolve_model(model, cache_dir)
        wanted = pick_device(device)
        if wanted == "cuda":
            try:
                whisper = _load(path, "cuda", compute_type, threads, workers)
                _warm_up(whisper)  # cuBLAS/cuDNN load lazily: a missing library shows only here
                return cls(whisper, device="cuda", model_name=model, beam_size=beam_size, vad=vad)
            except (RuntimeError, OSError, ValueError) as exc:
                logger.warning("CUDA is not usable ({}); falling back to CPU", str(exc).splitlines()[0])
        try:
            whisper = _load(path, "cpu", compute_type, threads, workers)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {model!r} from {path}: {exc}") from exc
        return cls(whisper, device="cpu", model_name=model, beam_size=beam_size, vad=vad)

    def stream(self, samples: np.ndarray, language: str | None = None) -> tuple[StreamInfo, Iterator[Segment]]:
        if not self._model.model.is_multilingual and language not in (None, "en"):
            language = None  # an English-only model cannot honour another language
        try:
            raw_segments, info = self._model.transcribe(
                samples,
                language=language,
                beam_size=self.beam_size,
                vad_filter=self.vad,
                # Feeding back the previous text is what turns one hallucination into a loop.
                condition_on_previous_text=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(str(exc)) from exc
        stream_info = StreamInfo(info.language, info.language_probability, info.duration)
        return stream_info, self._segments(raw_segments)

    @staticmethod
    def _segments(raw_segments) -> Iterator[Segment]:
        try:
            for s in raw_segments:
                text = s.text.strip()
                if not text or s.no_speech_prob > NO_SPEECH_DROP or s.compression_ratio > COMPRESSION_RATIO_DROP:
                    logger.debug("dropped segment {:.1f}-{:.1f}s (no_speech={:.2f}, ratio={:.2f})",
                                 s.start, s.end, s.no_speech_prob, s.compression_ratio)
                    continue
                yield Segment(s.start, s.end, text, s.no_speech_prob, s.avg_logprob, s.compression_ratio)
        except RuntimeError as exc:  # CTranslate2 errors surface while iterating
            raise TranscriptionError(str(exc)) from exc


def load_engine(settings: Settings) -> FasterWhisperTranscriber:
    """Load the configured model once (downloading it into the cache the first time)."""
    workers = settings.max_concurrent_jobs or (2 if pick_device(settings.whisper_device) == "cuda" else 1)
    started = time.monotonic()
    engine = FasterWhisperTranscriber.load(
        settings.whisper_model, cache_dir=settings.model_cache_dir, device=settings.whisper_device,
        compute_type=settings.whisper_compute_type, threads=settings.whisper_threads,
        workers=workers, beam_size=settings.whisper_beam_size,
        vad=settings.whisper_vad)
    logger.info("model {} loaded on {} in {:.1f}s", settings.whisper_model, engine.device,
                time.monotonic() - started)
    return engine


def pick_device(device: str) -> str:
    """``auto`` → ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    try:
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except RuntimeError:
        return "cpu"


def resolve_model(model: str, cache_dir: Path) -> str:
    """Local directory of ``model``: as given, from the cache, or downloaded into the cache.

    A cached model is used without touching the network, so the bot runs offline once
    its model is there. ``HF_HUB_OFFLINE=1`` forbids downloads altogether.

    Example::

        resolve_model("/srv/models/my-whisper", Path("data/models"))   # used as is
        resolve_model("small", Path("data/models"))   # cached, or downloaded once
    """
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "model.bin").is_file():
            raise ModelError(f"{local} has no model.bin: not a CTranslate2 Whisper model directory")
        return str(local)
    if model not in available_models() and not re.fullmatch(r"[\w.-]+/[\w.-]+", model):
        raise ModelError(f"{model!r} is neither a model directory nor a model name "
                         f"({', '.join(available_models())})")
    cached = find_cached_model(model, cache_dir)
    if cached:
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelError(f"model {model!r} is not in {cache_dir} and HF_HUB_OFFLINE is set")
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("downloading model {} into {} (once; later starts use the cache)", model, cache_dir)
    try:
        return download_model(model, cache_dir=str(cache_dir))
    except Exception as exc:  # network, disk and hub errors all mean the same to the user
        raise ModelError(f"could not download model {model!r}: {exc}") from exc


def find_cached_model(model: str, cache_dir: Path) -> str | None:
    """Directory of model name ``model`` in ``cache_dir``, without any network access."""
    try:
        return download_model(model, cache_dir=str(cache_dir), local_files_only=True)
    except Exception:  # huggingface_hub raises several types for "not in cache"
        return None


def silero_detector() -> "SileroDetector":
    """A fresh Silero VAD for one recording (the model faster-whisper's ``vad_filter`` runs),
    for :func:`voicebot.chunking.speech_chunks`. The ONNX model is loaded once and shared.

    Example::

        chunks = speech_chunks(blocks, detector=silero_detector())
    """
    return SileroDetector()


class SileroDetector:
    """Silero VAD over consecutive frames, carrying its state from call to call.

    faster-whisper's ``SileroVADModel`` takes a whole recording at once; this feeds the same
    ONNX session frame batches as they are decoded, with the same 64-sample context per
    frame and the recurrent state carried over, so the probabilities are identical.
    """

    _CONTEXT = 64

    def __init__(self) -> None:
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._CONTEXT, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        batch = np.asarray(frames, dtype=np.float32).reshape(-1, FRAME)
        if not len(batch):
            return np.zeros(0, dtype=np.float32)
        context = np.concatenate([self._context[None], batch[:-1, -self._CONTEXT:]])
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, batch], axis=1), "h": self._h, "c": self._c})
        self._context = batch[-1, -self._CONTEXT:].copy()
        return out.reshape(-1)


def _load(path: str, device: str, compute_type: str, threads: int, workers: int) -> WhisperModel:
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return WhisperModel(path, device=device, compute_type=compute_type,
                        cpu_threads=threads, num_workers=max(1, workers))


def _warm_up(model: WhisperModel) -> None:
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    segments, _ = model.transcribe(silence, beam_size=1, vad_filter=False, language="en")
    list(segments)
