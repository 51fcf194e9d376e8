"""Every script in bench/ runs, in its short mode, and its last line carries its figures.

The figures are numbers, not goals: timings on a shared machine say nothing in a test (no
timed assertions). What does not depend on time is checked too: no voice lost or answered
twice, the transcripts' word error rates. A new script without an entry here fails.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = sorted((ROOT / "bench").glob("*.py"))

# --short's "long" voice is 15 s (total_ratio_0.25min): the names at each length are checked alike
E2E = [
    "overhead_ratio",
    "burst_ratio",
    "command_p95_ms",
    "first_words_share",
    "total_ratio_0.25min",
    "first_ratio_0.25min",
]
FIGURES = {  # script → the names its last line must carry
    "cli_vs_bare.py": ["cli_s", "bare_s", "ratio"],
    "demo_session.py": ["messages", "voices", "commands", "private_answers", "transcripts", "seconds"],
    "e2e.py": [f"tiny.en/{k}" for k in [*E2E, "wer_en"]]
    + [f"base/{k}" for k in [*E2E, "wer_en", "wer_ru"]]
    + ["loadavg_1m"],
    "kill_soak.py": ["rounds", "voices", "answered_once", "duplicates", "unanswered", "seed"],
    "load.py": ["voices", "transcribed", "refused", "lost", "rss_start_mb", "rss_peak_mb", "rss_end_mb"],
    "names.py": ["names_without", "names_with", "of", "wer_delta"],
    "remote.py": ["overhead_ratio", "speedup"],
    "vocab_cost.py": [
        f"tiny.en/{k}"
        for k in [
            "words_bare",
            "words_bare_hints",
            "words_plain",
            "words_hints",
            "hints_ratio",
            "plain_ratio",
            "retried",
        ]
    ],
}
MARKS = {"remote.py": [pytest.mark.remote]}  # real speech servers, as the remote tests


def figures(line: str) -> dict[str, float]:
    pairs = dict(re.findall(r"(\S+?)=(\S+)", line))
    for key, value in pairs.items():
        try:
            float(value)
        except ValueError:
            pytest.fail(f"{key}={value} is not a number in {line!r}")
    return {key: float(value) for key, value in pairs.items()}


def test_every_script_is_known():
    assert [p.name for p in BENCH] == sorted(FIGURES), "name the new script's figures in FIGURES"


@pytest.mark.bench
@pytest.mark.parametrize("script", [pytest.param(p, id=p.name, marks=MARKS.get(p.name, [])) for p in BENCH])
def test_bench_script_short(script):
    done = subprocess.run(
        [sys.executable, str(script), "--short"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    got = figures(lines[-1])
    missing = [name for name in FIGURES[script.name] if name not in got]
    assert not missing, f"{script.name}'s last line lacks {missing}: {lines[-1]!r}"
    check = {
        "kill_soak.py": lambda f: f["answered_once"] == f["voices"] > 0 and f["duplicates"] == f["unanswered"] == 0,
        "load.py": lambda f: f["lost"] == 0 and f["transcribed"] + f["refused"] == f["voices"] > 0,
        "demo_session.py": lambda f: f["transcripts"] == f["voices"] == 2 and f["private_answers"] == 2,
        "e2e.py": lambda f: all(v <= 0.25 for k, v in f.items() if "/wer_" in k),
        "names.py": lambda f: f["names_with"] > f["names_without"],  # the vocabulary is heard
        # the hints never cost words: a window they silenced is decoded again
        "vocab_cost.py": lambda f: f["tiny.en/words_hints"] >= 0.9 * f["tiny.en/words_plain"] > 0,
    }.get(script.name)
    assert check is None or check(got), f"{script.name}: {lines[-1]}"
