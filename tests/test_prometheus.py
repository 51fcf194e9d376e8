"""The metrics as an operator sees them: a real Prometheus (Debian's ``prometheus`` package)
scrapes the running bot on loopback every second, and each test asks it over its HTTP API.

Counters live as long as the test process, so each test reads a baseline from a scrape taken
after its bot started, then waits for a scrape taken after the voice was answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from telethon.tl.types import DocumentAttributeAudio

from voicebot import audio
from voicebot.engine import Transcriber

from .botharness import Inbox, RunningBot, transcribed
from .helpers import FIXTURES

pytestmark = pytest.mark.metrics
DOCS = Path(__file__).parent.parent / "docs" / "metrics.md"
WAIT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """``prometheus`` in a child process, scraping ``127.0.0.1:target_port`` every second."""

    def __init__(self, target_port: int, workdir: Path):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            raise RuntimeError("no prometheus binary: apt-get install prometheus (.ci/setup does)")
        self.target_port, self.port, self.workdir = target_port, free_port(), workdir
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: voicebot\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, **params: str) -> object:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, promql: str) -> list[dict]:
        """An instant query's result (off the event loop: the bot shares it)."""
        data = await asyncio.to_thread(self.api, "query", query=promql)
        return data["result"]

    async def sample(self, selector: str, *, after: float, until=lambda value: True) -> float:
        """The value of one series from a scrape that started after ``after`` (time.time()) and
        satisfies ``until``, waiting for the next scrapes as needed."""
        deadline = time.monotonic() + WAIT_S
        seen = None
        while True:
            # A range selector returns the raw samples with their scrape timestamps.
            result = await self.query(f"{selector}[30s]")
            if len(result) == 1 and result[0]["values"]:
                timestamp, text = result[0]["values"][-1]
                seen = (timestamp, float(text))
                if timestamp >= after and until(seen[1]):
                    return seen[1]
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector}: no fitting scrape after {after:.3f}; last {seen}, result {result}")
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def prometheus():
    """One Prometheus for the module; each test's bot serves its metrics on ``target_port``."""
    with tempfile.TemporaryDirectory(prefix="voicebot-prometheus-") as workdir:
        server = Prometheus(free_port(), Path(workdir))
        try:
            server.wait_ready()
            yield server
        finally:
            server.close()


class Gate(Transcriber):
    """The real engine, held before each recording until the test opens the gate."""

    def __init__(self, engine: Transcriber):
        self.engine, self.open = engine, threading.Event()
        self.device, self.model_name, self.reads_blocks = engine.device, engine.model_name, engine.reads_blocks

    def stream(self, samples, language=None):
        self.open.wait(WAIT_S)
        return self.engine.stream(samples, language)

    def stream_choosing(self, samples, language=None, **choosing):  # prefer, languages, vocabulary
        self.open.wait(WAIT_S)
        return self.engine.stream_choosing(samples, language, **choosing)


@pytest.fixture
async def bot(fakegram, engine, tmp_path, prometheus, request):
    """The running bot with ``METRICS_PORT`` where Prometheus scrapes; more settings from
    ``@pytest.mark.bot_settings``; parametrized indirectly with ``"gated"``, its engine waits
    for ``bot.gate.open`` before each recording."""
    marker = request.node.get_closest_marker("bot_settings")
    env = {"METRICS_PORT": str(prometheus.target_port), **(marker.kwargs if marker else {})}
    gate = Gate(engine) if getattr(request, "param", None) == "gated" else None
    running = RunningBot(fakegram, gate or engine, tmp_path / "bot", env)
    await running.start()
    running.gate = gate
    running.started = time.time()
    try:
        yield running
    finally:
        if gate is not None:
            gate.open.set()
        await running.stop()


@pytest.fixture
async def alice(fakegram, bot):
    client = await fakegram.new_user("Alice", username="alice")
    await client.get_dialogs()
    return client, Inbox(client, bot.id)


async def send_voice(client, to, name, duration=5):
    return await client.send_file(
        to, FIXTURES / name, voice_note=True, attributes=[DocumentAttributeAudio(duration=duration, voice=True)]
    )


async def test_a_voice_is_counted_done_with_its_audio_its_speed_and_first_words(bot, alice, prometheus):
    client, inbox = alice
    series = [
        'voicebot_jobs_total{outcome="done"}',
        "voicebot_audio_seconds_total",
        "voicebot_realtime_factor_ratio_count",
        "voicebot_realtime_factor_ratio_sum",
        "voicebot_first_words_seconds_count",
        "voicebot_first_words_seconds_sum",
    ]
    before = [await prometheus.sample(s, after=bot.started) for s in series]
    assert await prometheus.sample('up{job="voicebot"}', after=bot.started) == 1

    sent = await send_voice(client, bot.username, "hello.ogg")
    await inbox.wait(lambda: transcribed(inbox, sent.id))
    answered = time.time()
    after = [
        await prometheus.sample(s, after=answered, until=lambda v, b=b: v > b)
        for s, b in zip(series, before, strict=True)
    ]
    done, audio_s, rtf_n, rtf_sum, words_n, words_sum = (a - b for a, b in zip(after, before, strict=True))
    assert done == 1
    assert audio_s == pytest.approx(audio.probe(FIXTURES / "hello.ogg").duration, abs=0.1)
    assert (rtf_n, words_n) == (1, 1)
    assert rtf_sum > 0 and words_sum > 0
    # The docs' query for the median real-time factor answers too.
    (median,) = await prometheus.query("histogram_quantile(0.5, sum by (le) (voicebot_realtime_factor_ratio_bucket))")
    assert float(median["value"][1]) > 0


@pytest.mark.bot_settings(MAX_DURATION_SECONDS="600")
async def test_no_speech_and_refused_voices_are_counted(bot, alice, prometheus):
    client, inbox = alice
    series = [
        'voicebot_jobs_total{outcome="no_speech"}',
        'voicebot_jobs_total{outcome="refused"}',
        'voicebot_guard_hits_total{guard="silence"}',
        'voicebot_jobs_total{outcome="done"}',
    ]
    before = [await prometheus.sample(s, after=bot.started) for s in series]
    silent = await send_voice(client, bot.username, "silence.ogg")
    too_long = await send_voice(client, bot.username, "hello.ogg", duration=3600)  # over the cap: refused
    await inbox.wait(lambda: transcribed(inbox, silent.id) and transcribed(inbox, too_long.id))
    answered = time.time()
    changed = [
        await prometheus.sample(s, after=answered, until=lambda v, b=b: v > b)
        for s, b in zip(series[:3], before[:3], strict=True)
    ]
    after = [*changed, await prometheus.sample(series[3], after=time.time())]  # nothing was transcribed
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 0]


@pytest.mark.parametrize("bot", ["gated"], indirect=True)
async def test_the_queue_depth_and_the_oldest_jobs_age_are_scraped(bot, alice, prometheus):
    client, inbox = alice
    first = await send_voice(client, bot.username, "hello.ogg")
    second = await send_voice(client, bot.username, "weather.ogg")  # waits: one worker, held
    queued = time.time()
    try:
        assert await prometheus.sample("voicebot_queue_waiting_jobs", after=queued, until=lambda v: v == 1) == 1
        assert await prometheus.sample("voicebot_queue_running_jobs", after=queued) == 1
        waited = await prometheus.sample("voicebot_queue_oldest_job_age_seconds", after=queued, until=lambda v: v > 0)
        assert waited > 0
    finally:
        bot.gate.open.set()
    await inbox.wait(lambda: transcribed(inbox, first.id) and transcribed(inbox, second.id))
    answered = time.time()
    assert await prometheus.sample("voicebot_queue_waiting_jobs", after=answered) == 0
    assert await prometheus.sample("voicebot_queue_oldest_job_age_seconds", after=answered) == 0


async def test_every_documented_metric_is_scraped_with_its_type_and_none_undocumented(bot, prometheus):
    """docs/metrics.md's table and what Prometheus learnt from the scrapes agree, name and type.
    (Prometheus names a counter's family without ``_total``, as OpenMetrics does.)"""
    rows = re.findall(r"^\| `(voicebot_\w+)` \| (\w+) \|", DOCS.read_text(), re.M)
    documented = {(name.removesuffix("_total") if kind == "counter" else name): kind for name, kind in rows}
    await prometheus.sample("voicebot_queue_waiting_jobs", after=bot.started)
    metadata = await asyncio.to_thread(prometheus.api, "metadata")
    scraped = {name: entries[0]["type"] for name, entries in metadata.items() if name.startswith("voicebot_")}
    assert scraped == documented
    units = ("_total", "_seconds", "_jobs", "_ratio")  # events counted, a time, a number of jobs, a ratio
    assert len(rows) >= 16 and all(name.endswith(units) for name, _ in rows), rows


async def test_the_docs_example_queries_run(bot, prometheus):
    """Every PromQL example in docs/metrics.md is valid, and answers once the bot was scraped
    twice (rate() needs two samples); the speech-server ones need a remote engine's requests."""
    await prometheus.sample("voicebot_queue_waiting_jobs", after=bot.started)
    await prometheus.sample("voicebot_queue_waiting_jobs", after=time.time())  # a second scrape
    text = "\n".join(re.findall(r"```promql\n(.*?)```", DOCS.read_text(), re.S))
    queries: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(" ") and queries:  # a continuation of the query above
            queries[-1] += " " + line.strip()
        else:
            queries.append(line)
    assert len(queries) >= 10
    unanswered = [q for q in queries if not await prometheus.query(q)]  # an invalid one raises
    assert all("voicebot_endpoint_" in q for q in unanswered), unanswered


def test_the_docs_alert_rules_pass_promtool(tmp_path):
    """The alert rules in docs/metrics.md, checked by the promtool that comes with Prometheus."""
    (rules,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if b.startswith("groups:")]
    (tmp_path / "voicebot-alerts.yml").write_text(rules)
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    checked = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "voicebot-alerts.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = set(re.findall(r"alert: (\w+)", rules))
    assert {
        "VoicebotDown",
        "VoicebotNotScraped",
        "VoicebotJobsFailing",
        "VoicebotQueueGrowing",
        "VoicebotTooSlow",
    } <= names
