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
* first_words_share — the worst, over the three lengths, of first words ÷ total;
* total_ratio_Nmin — the bot's total ÷ bare's, and first_ratio_Nmin — the bot's first words
                   after its download ÷ bare's own first segment, per length;
* wer_LANG       — word error rate of the bot's transcripts per language: English (the short
                   voices), Russian (festival fixtures, multilingual models only; auto-detected).

Every model given is measured in the same run (default: tiny.en and the multilingual base,
both from PyPI packages, tests/models.py), each against bare faster-whisper on its own.

    python bench/e2e.py                   # both models, 1 round, 1/5/20 min voices
    python bench/e2e.py --quick           # both models, burst of 10, 1 min voice only
    python bench/e2e.py --short           # smoke run, 2-4 min on 2 busy cores (tests/test_bench.py)
    python bench/e2e.py --model tiny.en --model /path/to/model --rounds 3
    python bench/e2e.py --long-only --rounds 2   # just the long voices

The last line has, per model M, ``M/overhead_ratio= M/burst_ratio= M/command_p95_ms=
M/first_words_share= M/total_ratio_1min= M/first_ratio_1min= … M/wer_en= [M/wer_ru=]``, and
``loadavg_1m=`` (what else ran on the machine meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from faster_whisper import WhisperModel
from loguru import logger
from telethon.tl.types import DocumentAttributeAudio

from tests import models
from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from tests.helpers import EXPECTED, wer
from voicebot.engine.local import FasterWhisperTranscriber

FIXTURES = ROOT / "tests" / "fixtures"
BEAM_SIZE = 1  # what the running_bot harness uses; both sides get the same


LONG_MINUTES = (1, 5, 20)
LANGUAGES = {"en": ("hello.ogg", "weather.ogg", "long.ogg"), "ru": ("hello_ru.ogg", "weather_ru.ogg")}


def make_long_voice(path: Path, minutes: float) -> str:
    """An Opus voice of about ``minutes`` made of the speech fixtures with pauses (0.6–2.5 s,
    so some are left out by the VAD); returns what is said in it."""
    from voicebot import audio

    expected = EXPECTED
    pieces, pauses = ["long.ogg", "weather.ogg", "hello.ogg"], [1.2, 0.6, 2.5]
    if minutes * 60 < 53:  # shorter than long.ogg (--short): the short fixtures only
        pieces, pauses = ["weather.ogg", "hello.ogg", "weather.ogg"], [0.6, 2.5, 1.2]
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


def bare_run(model, path: Path) -> tuple[float, float, str]:
    """faster-whisper's own transcribe() of ``path``: (first segment, total) in seconds, text."""
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=BEAM_SIZE, vad_filter=True, condition_on_previous_text=False)
    first, texts = None, []
    for segment in segments:
        first = first or time.perf_counter() - started
        texts.append(segment.text.strip())
    total = time.perf_counter() - started
    return first or total, total, " ".join(texts)


def complete(inbox: Inbox, message_id: int) -> bool:
    """The whole answer is there: final, and every part of a split one ("(1/3) " … "(3/3) ")."""
    texts = inbox.replies_to(message_id)
    if not transcribed(inbox, message_id):
        return False
    split = re.match(r"\((\d+)/(\d+)\) ", texts[0])
    return split is None or sum(bool(re.match(rf"\(\d+/{split[2]}\) ", t)) for t in texts) >= int(split[2])


def transcript(inbox: Inbox, message_id: int) -> str:
    """The bot's final answer to ``message_id``, its parts joined without their "(1/3) " marks."""
    parts = inbox.replies_to(message_id)
    return " ".join(re.sub(r"^\(\d+/\d+\) ", "", t) for t in parts)


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
        return complete(inbox, sent.id)

    await inbox.wait(seen, timeout=1800)
    total = time.perf_counter() - started
    words = first[0] if first else total  # a voice without progress edits: the transcript is the first
    return {
        "first": words,
        "total": total,
        "after_download": started + words - downloaded.pop(sent.id),
        "text": transcript(inbox, sent.id),
    }


def watch_downloads(bot, downloaded: dict) -> None:
    """Record when the bot's download of each message finishes (bench-only wrapper)."""
    chat = bot.bot.pipeline.chat
    download = chat.download

    async def timed(msg, dest):
        await download(msg, dest)
        downloaded[msg.message_id] = time.perf_counter()

    chat.download = timed


async def send_and_wait(client, inbox: Inbox, to: str, path: Path) -> tuple[float, str]:
    """Send ``path`` as a voice: (seconds until the final transcript is seen, its text)."""
    started = time.perf_counter()
    sent = await client.send_file(
        to, path, voice_note=True, attributes=[DocumentAttributeAudio(duration=5, voice=True)]
    )
    await inbox.wait(lambda: complete(inbox, sent.id), timeout=600)
    return time.perf_counter() - started, transcript(inbox, sent.id)


def bare_whisper(model_path: str) -> WhisperModel:
    """faster-whisper as its README loads it on a CPU (its own defaults: threads, one worker),
    beside the bot's engine, which loads the same files its own way."""
    return WhisperModel(model_path, device="cpu", compute_type="int8")


def load_engine(model_path: str) -> FasterWhisperTranscriber:
    return FasterWhisperTranscriber.load(
        model_path, cache_dir=Path(tempfile.gettempdir()), device="cpu", beam_size=BEAM_SIZE
    )


async def bench(engine, model_path: str, rounds: int, burst: int, short: bool = False) -> dict:
    bare_model = bare_whisper(model_path)
    multilingual = bare_model.model.is_multilingual
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        voices = make_voices(work)[:2] if short else make_voices(work)
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
            heard: dict[str, list[tuple[str, str, str]]] = {}  # language → (file, bot's text, bare's)
            for _ in range(rounds):
                for path in voices:  # interleaved, so drift hits both sides alike
                    _, b, bare_text = bare_run(bare_model, path)
                    e, text = await send_and_wait(alice, inbox, bot.username, path)
                    bare_total += b
                    bot_total += e
                    per_file.append((path.name, b, e))
                    if path.name in LANGUAGES["en"]:
                        heard.setdefault("en", []).append((path.name, text, bare_text))
            if multilingual:  # auto-detected: nothing pins the language (WER only, not timed)
                for name in LANGUAGES["ru"]:
                    _, _, bare_text = bare_run(bare_model, FIXTURES / name)
                    _, text = await send_and_wait(alice, inbox, bot.username, FIXTURES / name)
                    heard.setdefault("ru", []).append((name, text, bare_text))

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
            # .status reveals other chats: typed in Alice's chat, it answers in the owner's Saved
            # Messages (the chat with their own account) and the command itself is deleted.
            saved = Inbox(owner, bot.id)
            latencies: list[float] = []
            done = asyncio.Event()

            def answers() -> int:
                return sum("📊" in t for t in saved.texts.values())

            async def commands():
                while not done.is_set():
                    started = time.perf_counter()
                    before = answers()
                    await owner.send_message(alice_id, ".status")
                    await saved.wait(lambda before=before: answers() > before, timeout=30)
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
        "wer": {
            language: {
                "bot": wer(" ".join(EXPECTED[n] for n, _, _ in got), " ".join(t for _, t, _ in got)),
                "bare": wer(" ".join(EXPECTED[n] for n, _, _ in got), " ".join(t for _, _, t in got)),
            }
            for language, got in heard.items()
        },
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


async def bench_long(engine, model_path: str, rounds: int, minutes: tuple[float, ...], label: str = "") -> list[dict]:
    """Long voices over the loopback Telegram vs bare faster-whisper, interleaved."""
    bare_model = bare_whisper(model_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        voices = []
        for m in minutes:
            path = work / f"voice{m}min.ogg"
            voices.append((m, path, make_long_voice(path, m)))
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
                for m, path, said in voices:
                    copy = work / f"r{len(rows)}.ogg"  # a new document each time: no cache hit
                    copy.write_bytes(path.read_bytes())
                    bare_first, bare_total, bare_text = bare_run(bare_model, copy)
                    got = await long_voice(alice, inbox, bot.username, copy, downloaded)
                    rows.append(
                        {
                            "minutes": m,
                            "seconds": audio_seconds(copy),
                            "bare_first": bare_first,
                            "bare": bare_total,
                            "wer": wer(said, got.pop("text")),
                            "bare_wer": wer(said, bare_text),
                            **got,
                        }
                    )
                    r = rows[-1]
                    print(
                        f"  {label} {r['minutes']:>4} min round: first words "
                        f"{r['first']:6.2f}s ({r['after_download']:5.2f}s after download), total {r['total']:6.2f}s, "
                        f"bare {r['bare']:6.2f}s (its first segment {r['bare_first']:5.2f}s), "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
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
            for k in ("seconds", "first", "after_download", "total", "bare", "bare_first", "wer", "bare_wer")
        }
        med.update(
            minutes=m,
            rounds=len(mine),
            share=med["first"] / med["total"],
            total_ratio=statistics.median(r["total"] / r["bare"] for r in mine),
            first_ratio=statistics.median(r["after_download"] / r["bare_first"] for r in mine),
        )
        out.append(med)
    return out


def model_label(model: str) -> str:
    return model if model in ("tiny.en", "base") else Path(model).name


def model_dir(model: str) -> str:
    """``tiny.en`` and ``base`` are the test models (tests/models.py); anything else a directory."""
    if model == "tiny.en":
        return models.tiny_en()
    if model == "base":
        return models.base()
    return model


def report_short(label: str, result: dict) -> dict[str, float]:
    """Print one model's short voices, burst, commands, memory and WER (as soon as measured)."""
    print(f"== {label}: short voices, burst, .status, memory, WER", flush=True)
    for name, bare, bot in result["per_file"]:
        print(f"  {name:14} bare {bare:6.2f}s  bot {bot:6.2f}s  ratio {bot / bare:5.2f}")
    print(f"fixed overhead per voice: {result['fixed_overhead_ms']:.0f} ms")
    print(f"burst: {result['burst_seconds']:.1f}s vs bare {result['burst_bare_seconds']:.1f}s")
    print(f"commands during burst: {result['commands']}, median {result['command_median_ms']:.0f} ms")
    print(
        f"peak RSS: bot process {result['bot_peak_rss_mb']:.0f} MB, "
        f"bare model process {result['bare_peak_rss_mb']:.0f} MB"
    )
    for language, w in result["wer"].items():
        print(f"WER {language}: bot {w['bot']:.3f}, bare {w['bare']:.3f}")
    print(
        f"{label}: overhead_ratio={result['overhead_ratio']:.3f} burst_ratio={result['burst_ratio']:.3f} "
        f"command_p95_ms={result['command_p95_ms']:.0f} (load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    figures = {
        "overhead_ratio": result["overhead_ratio"],
        "burst_ratio": result["burst_ratio"],
        "command_p95_ms": result["command_p95_ms"],
    }
    figures.update({f"wer_{language}": w["bot"] for language, w in result["wer"].items()})
    return figures


def report(label: str, summary: list[dict]) -> dict[str, float]:
    """Print one model's long voices; return their headline figures."""
    print(f"== {label}: long voices")
    figures: dict[str, float] = {}
    print(
        "| voice | first words | after download | total | bare total | bare first segment | share "
        "| total ÷ bare | after download ÷ bare first | WER bot / bare |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in summary:
        print(
            f"| {s['minutes']:g} min ({s['seconds']:.0f} s) | {s['first']:.2f} s | {s['after_download']:.2f} s | "
            f"{s['total']:.2f} s | {s['bare']:.2f} s | {s['bare_first']:.2f} s | {s['share']:.1%} | "
            f"{s['total_ratio']:.3f} | {s['first_ratio']:.3f} | {s['wer']:.3f} / {s['bare_wer']:.3f} |"
        )
    figures["first_words_share"] = max(s["share"] for s in summary)
    for s in summary:
        figures[f"total_ratio_{s['minutes']:g}min"] = s["total_ratio"]
        figures[f"first_ratio_{s['minutes']:g}min"] = s["first_ratio"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="tiny.en, base or a model directory; repeat for several (default: tiny.en and base)",
    )
    parser.add_argument("--quick", action="store_true", help="1 round, burst of 10, the 1 min voice only")
    parser.add_argument(
        "--short",
        action="store_true",
        help="smoke run (tests/test_bench.py): 2 voices, burst of 2, a 15 s 'long' voice",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--long-only", action="store_true", help="only the long voices")
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        default=list(LONG_MINUTES),
        help="lengths of the long voices (default: 1 5 20)",
    )
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    if args.quick:
        args.rounds, args.minutes, args.burst = 1, [1], 10
    if args.short:
        args.rounds, args.minutes, args.burst = 1, [0.25], 2
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    line: list[str] = []
    for model in args.model or ["tiny.en", "base"]:
        label, path = model_label(model), model_dir(model)
        engine = load_engine(path)
        figures: dict[str, float] = {}
        if not args.long_only:
            figures = report_short(label, asyncio.run(bench(engine, path, args.rounds, args.burst, short=args.short)))
        rows = asyncio.run(bench_long(engine, path, args.rounds, tuple(args.minutes), label))
        figures.update(report(label, summarize_long(rows)))
        line += [f"{label}/{k}={v:.0f}" if k.endswith("_ms") else f"{label}/{k}={v:.3f}" for k, v in figures.items()]
        del engine
    load = os.getloadavg()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in load)}")
    print(" ".join([*line, f"loadavg_1m={load[0]:.2f}"]))


if __name__ == "__main__":
    main()
