"""The local engine's models: which device, which directory, loaded once.

A model is a name (``small``, ``large-v3``, ``turbo``…), a Hugging Face repo id, or a local
directory holding a CTranslate2 Whisper model. A cached model is used without touching the
network, so the bot runs offline once its model is there.

Example::

    path = resolve_model("small", Path("data/models"))    # cached, or downloaded once
    model = load_model(path, pick_device("auto"), "auto", threads=0, workers=1)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.utils import available_models, download_model
from loguru import logger

from voicebot.audio import SAMPLE_RATE
from voicebot.errors import ModelError


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
        raise ModelError(f"{model!r} is neither a model directory nor a model name ({', '.join(available_models())})")
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


def load_model(path: str, device: str, compute_type: str, threads: int, workers: int) -> WhisperModel:
    """A CTranslate2 Whisper model on ``device``; ``auto`` precision is float16 on CUDA, int8 on the CPU."""
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return WhisperModel(
        path, device=device, compute_type=compute_type, cpu_threads=threads, num_workers=max(1, workers)
    )


def warm_up(model: WhisperModel) -> None:
    """Run one second of silence: cuBLAS/cuDNN load lazily, so a missing library shows only here."""
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    segments, _ = model.transcribe(silence, beam_size=1, vad_filter=False, language="en")
    list(segments)
