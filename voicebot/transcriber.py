"""The local speech engine: faster-whisper. The only module that imports faster_whisper.

:class:`FasterWhisperTranscriber` implements :class:`voicebot.engine.Transcriber`, the
interface the rest of voicebot sees; the remote engine (``voicebot.remote``) is the other
implementation, and an image without this module's libraries still runs that one.

Example::

    engine = FasterWhisperTranscriber.load("small", cache_dir=Path("data/models"))
    result = engine.transcribe(decode("voice.ogg"))
    print(result.language, result.text)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
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
from .engine import (  # noqa: F401  (re-exported: the interface used to live here)
    COMPRESSION_RATIO_DROP, CONFUSABLE, NO_SPEECH_DROP, UNSURE_BELOW, Segment, StreamInfo, Transcriber,
    Transcription, choose_language, hallucinated)
from .errors import ModelError, TranscriptionError

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
                segment = Segment(s.start, s.end, s.text.strip(), s.no_speech_prob, s.avg_logprob,
                                  s.compression_ratio)
                if not segment.text or hallucinated(segment):
                    logger.debug("dropped segment {:.1f}-{:.1f}s (no_speech={:.2f}, ratio={:.2f})",
                                 s.start, s.end, s.no_speech_prob, s.compression_ratio)
                    continue
                yield segment
        except RuntimeError as exc:  # CTranslate2 errors surface while iterating
            raise TranscriptionError(str(exc)) from exc


def load_local_engine(settings: Settings, model: str | None = None) -> FasterWhisperTranscriber:
    """Load the configured model (or ``model``) once, downloading it into the cache the first time."""
    model = model or settings.whisper_model
    workers = settings.max_concurrent_jobs or (2 if pick_device(settings.whisper_device) == "cuda" else 1)
    started = time.monotonic()
    engine = FasterWhisperTranscriber.load(
        model, cache_dir=settings.model_cache_dir, device=settings.whisper_device,
        compute_type=settings.whisper_compute_type, threads=settings.whisper_threads,
        workers=workers, beam_size=settings.whisper_beam_size,
        vad=settings.whisper_vad)
    logger.info("model {} loaded on {} in {:.1f}s", model, engine.device,
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
