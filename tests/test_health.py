"""``voicebot health`` catches a wedged bot: the heartbeat stops while a job runs far past
what its length predicts, and comes back once it ends."""

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from loguru import logger

from voicebot.cli import main
from voicebot.core.health import RunningJob, limit_for, wedged
from voicebot.engine.base import StreamInfo, Transcriber

from .botharness import RunningBot
from .helpers import FIXTURES

ROOT = Path(__file__).parent.parent


# -- the rule -----------------------------------------------------------------------------


def test_a_job_is_wedged_only_past_the_floor_and_the_factor_times_its_audio():
    short = RunningJob(1, 10, started=0.0, audio_s=2.0)
    long = RunningJob(1, 11, started=0.0, audio_s=1800.0)  # a 30 min voice
    unprobed = RunningJob(1, 12, started=0.0)  # still downloading
    rule = {"floor_s": 600.0, "factor": 10.0}
    assert limit_for(short, **rule) == 600.0 and limit_for(long, **rule) == 18_000.0
    assert limit_for(unprobed, **rule) == 600.0
    assert wedged([short, long, unprobed], 599.0, **rule) is None
    stuck = wedged([short, long], 601.0, **rule)
    assert stuck is not None and stuck.job is short and (stuck.ran_s, stuck.limit_s) == (601.0, 600.0)
    assert wedged([long], 7200.0, **rule) is None  # 2 h on 30 min of audio is slow, not stuck
    assert wedged([long], 18_001.0, **rule).job is long


def test_the_job_furthest_past_its_limit_is_named_and_waiting_for_servers_is_not_wedged():
    a = RunningJob(1, 1, started=0.0, audio_s=10.0)  # limit 100 s
    b = RunningJob(1, 2, started=50.0, audio_s=1.0)  # limit 10 s: ran 250 s, 240 s over
    assert wedged([a, b], 300.0, floor_s=10.0, factor=10.0).job is b
    assert wedged([a, b], 300.0, floor_s=10.0, factor=10.0, servers_down=True) is None


# -- a wedged worker, over the wire ---------------------------------------------------------


class WedgedEngine(Transcriber):
    """Never comes back from a voice, as an engine stuck in native code would not."""

    model_name, device = "wedged", "cpu"

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def stream(self, samples, language=None):
        def segments():
            self.entered.set()
            self.release.wait()
            yield from ()

        return StreamInfo("en", 1.0, 2.0), segments()


def health(max_age: float = 2.0) -> tuple[int, str]:
    """``voicebot health`` as the image's health check runs it (in this process: DATA_DIR is set)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--env-file", "/nonexistent", "health", "--max-age", str(max_age)])
    return code, out.getvalue() + err.getvalue()


async def until_health(code: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        got, said = health()
        if got == code:
            return said
        assert time.monotonic() < deadline, f"health stayed {got}: {said}"
        await asyncio.sleep(0.1)


@pytest.fixture
def two_second_voice(tmp_path) -> Path:
    voice = tmp_path / "two-seconds.ogg"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(FIXTURES / "hello.ogg"), "-t", "2", "-c", "copy", str(voice)],
        check=True,
    )
    return voice


@pytest.mark.wire
async def test_a_wedged_worker_makes_health_fail_until_it_ends(fakegram, tmp_path, monkeypatch, two_second_voice):
    engine = WedgedEngine()
    env = {"HEARTBEAT_SECONDS": "0.2", "STUCK_JOB_SECONDS": "5", "STUCK_JOB_FACTOR": "1"}  # limit: max(5, 1 × 2 s)
    bot = RunningBot(fakegram, engine, tmp_path / "bot", env)
    monkeypatch.setenv("DATA_DIR", str(bot.data_dir))
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="INFO")
    await bot.start()
    try:
        await until_health(0)
        alice = fakegram.create_user("Alice", username="alice")
        fakegram.send_message(alice, bot.user, voice=two_second_voice.read_bytes(), duration=2)
        assert await asyncio.to_thread(engine.entered.wait, 30)
        assert health()[0] == 0  # a job running within its limit is healthy

        said = await until_health(1)  # the worker never comes back: the heartbeat stops
        assert "unhealthy: last heartbeat" in said
        withheld = [line for line in logged if "heartbeat withheld" in line]
        assert len(withheld) == 1 and "STUCK_JOB_SECONDS" in withheld[0]  # one line, with why
        real = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "voicebot", "--env-file", "/nonexistent", "health", "--max-age", "2"],
            env={"DATA_DIR": str(bot.data_dir), "PATH": "/usr/bin:/bin"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert real.returncode == 1 and "unhealthy" in real.stderr  # what Docker's HEALTHCHECK sees

        engine.release.set()  # the job ends: healthy again
        await until_health(0)
        assert any("heartbeat resumed" in line for line in logged)
    finally:
        engine.release.set()
        logger.remove(sink)
        await bot.stop()


@pytest.mark.wire
async def test_a_worker_stuck_twice_past_its_limit_ends_the_bot_non_zero(fakegram, tmp_path, two_second_voice):
    """Docker's restart policy ignores "unhealthy" (only Swarm acts on it): the bot ends itself."""
    engine = WedgedEngine()
    env = {"HEARTBEAT_SECONDS": "0.2", "STUCK_JOB_SECONDS": "2", "STUCK_JOB_FACTOR": "1"}  # limit: 2 s
    bot = RunningBot(fakegram, engine, tmp_path / "bot", env)
    await bot.start()
    try:
        alice = fakegram.create_user("Alice", username="alice")
        fakegram.send_message(alice, bot.user, voice=two_second_voice.read_bytes(), duration=2)
        assert await asyncio.to_thread(engine.entered.wait, 30)
        assert not bot.bot.wedged.done()  # stuck, but not yet twice past the limit
        reason = await asyncio.wait_for(bot.bot.wedged, 60)
        assert "msg=" in str(reason) and "journal" in str(reason)
        record = next(r for r in bot.bot.state.journal.unfinished())  # resumed by the next start
        assert record.state == "running"
    finally:
        engine.release.set()
        await bot.stop()


def test_run_ending_on_a_wedged_worker_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from voicebot import app
    from voicebot.errors import WorkerWedged

    async def wedged_run(settings):
        raise WorkerWedged("job chat=1 msg=2 is stuck (9s, twice past its limit of 4s)")

    monkeypatch.setattr(app, "run", wedged_run)
    left: list[int] = []  # the real one may os._exit past a stuck thread: here it only records
    monkeypatch.setattr(app, "abandon_running_work", lambda wait=2.0, code=0: left.append(code))
    env = {"API_ID": "1", "API_HASH": "0" * 32, "DATA_DIR": str(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--env-file", "/nonexistent", "run"]) == 1
    assert left == [1]  # a worker stuck in the engine cannot hold the exit at 0
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["voicebot: job chat=1 msg=2 is stuck (9s, twice past its limit of 4s)"]
