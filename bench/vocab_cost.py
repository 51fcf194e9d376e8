"""What a vocabulary costs the local engine, side by side: words kept and time taken.

The bot gives every voice a vocabulary (at least the sender's name and the chat's title:
voicebot/core/vocabulary.py), which goes before every window as faster-whisper's ``hotwords``.
This runs, interleaved on the same decoded voices with the same loaded model (beam 1, VAD):

* ``bare``       faster-whisper's ``transcribe()``, no hotwords;
* ``bare_hints`` the same with ``hotwords`` = the vocabulary;
* ``plain``      the bot's engine (FasterWhisperTranscriber.transcribe), no vocabulary;
* ``hints``      the bot's engine with the vocabulary.

A small model given hint phrases sometimes answers end-of-text at once for a window of speech:
its words are gone (tiny.en with just "Alice" lost 35 % of a 5 min voice, faster-whisper's own
``transcribe()`` 10 %). The engine decodes such a window again without the hints; ``retried``
counts those windows.

    python bench/vocab_cost.py                    # tiny.en and base, 1 and 5 min, 2 rounds
    python bench/vocab_cost.py --short            # tiny.en, 30 s, 1 round (tests/test_bench.py)
    python bench/vocab_cost.py --model base --minutes 5 --vocabulary "Alice, Bob"

The last line has, per model M: ``M/words_bare= M/words_bare_hints= M/words_plain= M/words_hints=``
(summed over the voices), ``M/hints_ratio=`` (hints ÷ plain, wall time), ``M/bare_hints_ratio=``
(bare_hints ÷ bare), ``M/plain_ratio=`` (plain ÷ bare) and ``M/retried=`` (windows decoded again, all rounds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import make_long_voice, model_dir, model_label

from voicebot import metrics
from voicebot.audio import open_recording
from voicebot.engine.base import prompt_text
from voicebot.engine.local import FasterWhisperTranscriber


def retried() -> float:
    """Windows the engine decoded again without the hints, so far (its metric)."""
    return metrics.REGISTRY.get_sample_value("voicebot_guard_hits_total", {"guard": "hints_silenced"}) or 0.0


def run_bare(engine: FasterWhisperTranscriber, path: Path, hotwords: str | None) -> list[str]:
    segments, _ = engine._model.transcribe(
        str(path), beam_size=1, vad_filter=True, condition_on_previous_text=False, hotwords=hotwords
    )
    return [s.text for s in segments]


def run_engine(engine: FasterWhisperTranscriber, path: Path, vocabulary: tuple[str, ...]) -> list[str]:
    recording = open_recording(path, max_duration_s=7200)
    return [s.text for s in engine.transcribe(recording, None, vocabulary=list(vocabulary)).segments]


def measure(model: str, voices: list[Path], vocabulary: tuple[str, ...], rounds: int, cache: Path) -> dict[str, float]:
    engine = FasterWhisperTranscriber.load(model_dir(model), cache_dir=cache, device="cpu", beam_size=1)
    hotwords = prompt_text(vocabulary)
    sides = {
        "bare": lambda p: run_bare(engine, p, None),
        "bare_hints": lambda p: run_bare(engine, p, hotwords),
        "plain": lambda p: run_engine(engine, p, ()),
        "hints": lambda p: run_engine(engine, p, vocabulary),
    }
    run_engine(engine, voices[0], ())  # warm-up
    seconds = dict.fromkeys(sides, 0.0)
    words = dict.fromkeys(sides, 0)
    again = retried()
    for n in range(rounds):
        first = n == 0
        for voice in voices:
            for side, run in sides.items():
                started = time.perf_counter()
                texts = run(voice)
                seconds[side] += time.perf_counter() - started
                if first:
                    words[side] += sum(len(t.split()) for t in texts)
                print(f"  {model} {voice.name} {side:10s} {time.perf_counter() - started:6.2f} s", flush=True)
    return {
        **{f"words_{side}": float(n) for side, n in words.items()},
        "hints_ratio": seconds["hints"] / seconds["plain"],
        "bare_hints_ratio": seconds["bare_hints"] / seconds["bare"],
        "plain_ratio": seconds["plain"] / seconds["bare"],
        "retried": retried() - again,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="tiny.en, base or a directory (default: both)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--vocabulary", default="Alice", help="comma-separated (default: a sender's name)")
    parser.add_argument("--short", action="store_true", help="tiny.en, one 30 s voice, 1 round")
    args = parser.parse_args()
    if args.short:
        args.model, args.minutes, args.rounds = ["tiny.en"], [0.5], 1
    vocabulary = tuple(t.strip() for t in args.vocabulary.split(",") if t.strip())
    with tempfile.TemporaryDirectory() as tmp:
        voices = []
        for minutes in args.minutes:
            voices.append(Path(tmp) / f"voice_{minutes:g}min.ogg")
            make_long_voice(voices[-1], minutes)
        figures = {}
        for model in args.model or ["tiny.en", "base"]:
            for key, value in measure(model, voices, vocabulary, args.rounds, Path(tmp)).items():
                figures[f"{model_label(model)}/{key}"] = value
    print(" ".join(f"{k}={v:.3f}" if "ratio" in k else f"{k}={v:g}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
