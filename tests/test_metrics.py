"""The metrics, offline: what the core, the engines and the pool record, the settings, and the
endpoint that serves them. A real Prometheus scraping the running bot: tests/test_prometheus.py."""

import asyncio
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from voicebot import audio, metrics
from voicebot.config import load_settings
from voicebot.core.jobs.queue import JobQueue
from voicebot.core.pipeline import Pipeline
from voicebot.engine import Segment, StreamInfo, Transcriber
from voicebot.engine.remote.pool import Endpoint, EndpointError, EndpointPool
from voicebot.engine.remote.transcriber import RemoteTranscriber
from voicebot.engine.remote.wire import Heard
from voicebot.errors import ConfigError
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import FIXTURES, OWNER_ID, MemoryChat, dispatch

BASE = {"API_ID": "1", "API_HASH": "0" * 32}


def value(name: str, **labels: str) -> float:
    """The metric's current value in the bot's registry (0 for a series not there yet)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class Counts:
    """The values of some series now, to compare with later (the registry lives as long as
    the process, so other tests' jobs are counted too)."""

    def __init__(self, *series: tuple):
        self.series = series
        self.before = [value(name, **labels) for name, labels in series]

    def delta(self) -> list[float]:
        return [value(name, **labels) - b for (name, labels), b in zip(self.series, self.before, strict=True)]


# -- settings -----------------------------------------------------------------------------------


def test_metrics_are_off_by_default_and_loopback_when_on():
    default = load_settings(BASE, dotenv_path=None)
    assert (default.metrics_port, default.metrics_host) == (0, "127.0.0.1")
    on = load_settings({**BASE, "METRICS_PORT": "9464"}, dotenv_path=None)
    assert (on.metrics_port, on.metrics_host) == (9464, "127.0.0.1")
    assert load_settings({**BASE, "METRICS_HOST": "::"}, dotenv_path=None).metrics_host == "::"
    assert load_settings({**BASE, "METRICS_HOST": "prometheus.lan"}, dotenv_path=None).metrics_host == "prometheus.lan"


@pytest.mark.parametrize(
    "name, bad",
    [
        ("METRICS_PORT", "0"),
        ("METRICS_PORT", "65536"),
        ("METRICS_PORT", "ninety"),
        ("METRICS_HOST", "http://0.0.0.0"),
        ("METRICS_HOST", "my host"),
    ],
)
def test_a_bad_metrics_setting_names_itself(name, bad):
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: bad}, dotenv_path=None)
    assert str(info.value).startswith(f"{name}: ")


# -- the endpoint -------------------------------------------------------------------------------


def test_the_endpoint_serves_voicebot_metrics_until_stopped():
    server = metrics.start("127.0.0.1", 0)  # 0: a free port, told by server.port
    try:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    for line in (
        "# TYPE voicebot_jobs_total counter",
        'voicebot_jobs_total{outcome="done"}',
        'voicebot_jobs_total{outcome="no_speech"}',
        "# TYPE voicebot_realtime_factor_ratio histogram",
        "# TYPE voicebot_first_words_seconds histogram",
        "voicebot_queue_waiting_jobs ",
        "voicebot_queue_oldest_job_age_seconds ",
        'voicebot_guard_hits_total{guard="compression_ratio"}',
    ):
        assert line in text, line
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=5)


async def test_a_metrics_port_in_use_stops_the_start_naming_the_setting(tmp_path):
    from voicebot.app import Bot

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings({**BASE, "DATA_DIR": str(tmp_path), "METRICS_PORT": str(port)}, dotenv_path=None)
        with pytest.raises(ConfigError) as info:
            await Bot(settings, engine=object()).start(client=None)
    assert str(info.value).startswith("METRICS_PORT: cannot serve metrics on 127.0.0.1:")


def test_recording_never_fails_the_caller():
    before = value("voicebot_audio_seconds_total")
    metrics.transcribed(audio_s="twelve", took_s=None)  # nonsense: dropped, logged at DEBUG
    metrics.first_words(None)
    metrics.request("a:1", error=object())
    assert value("voicebot_audio_seconds_total") == before


# -- what the core records ----------------------------------------------------------------------


class Engine(Transcriber):
    """Says ``text`` over the whole recording ("" for no speech)."""

    model_name, device = "fixed", "cpu"

    def __init__(self, text):
        self.text = text

    def stream(self, samples, language=None):
        info = StreamInfo("en", 0.99, len(samples) / audio.SAMPLE_RATE)
        return info, iter([Segment(0.0, info.duration, self.text)] if self.text else [])


def voice(message_id, *, size=20_000, document_id=None):
    return IncomingMessage(
        chat_id=42,
        message_id=message_id,
        chat_kind=ChatKind.PRIVATE,
        sender_id=42,
        outgoing=False,
        media=Media(MediaKind.VOICE, size=size, duration=4.0, document_id=document_id),
    )


async def run(tmp_path, engine, files, *messages, **env):
    settings = load_settings({**BASE, "TEMP_DIR": str(tmp_path / "temp"), **env}, dotenv_path=None)
    temp = TempDir(settings.temp_dir)
    temp.prepare()
    chat = MemoryChat({i: FIXTURES / name for i, name in files.items()})
    pipeline = Pipeline(settings, engine, chat, temp, State(tmp_path / "state.db"), owner_id=OWNER_ID)
    pipeline.start()
    for msg in messages:
        await dispatch(pipeline).on_message(msg)
    await pipeline.drain()
    await pipeline.stop()
    return chat


async def test_jobs_are_counted_by_outcome_with_their_audio_and_timings(tmp_path):
    counts = Counts(
        ("voicebot_jobs_total", {"outcome": "done"}),
        ("voicebot_jobs_total", {"outcome": "cached"}),
        ("voicebot_jobs_total", {"outcome": "refused"}),
        ("voicebot_cache_hits_total", {}),
        ("voicebot_realtime_factor_ratio_count", {}),
        ("voicebot_first_words_seconds_count", {}),
        ("voicebot_audio_seconds_total", {}),
    )
    files = {1: "hello.ogg", 2: "hello.ogg", 3: "hello.ogg"}
    chat = await run(
        tmp_path,
        Engine("hello there"),
        files,
        voice(1, document_id=77),
        voice(2, document_id=77),  # the same recording forwarded: from the cache
        voice(3, size=80 * 2**20),  # over MAX_FILE_MB: refused with a reply
        MAX_FILE_MB="1",
    )
    assert len(chat.answers_for(1)) == len(chat.answers_for(2)) == len(chat.answers_for(3)) == 1
    done, cached, refused, hits, rtf, first_words, audio_s = counts.delta()
    assert (done, cached, refused, hits, rtf, first_words) == (1, 1, 1, 1, 1, 1)
    assert audio_s == pytest.approx(audio.probe(FIXTURES / "hello.ogg").duration, abs=0.1)


async def test_no_speech_is_an_outcome_and_a_guard_hit(tmp_path):
    counts = Counts(
        ("voicebot_jobs_total", {"outcome": "no_speech"}),
        ("voicebot_guard_hits_total", {"guard": "silence"}),
        ("voicebot_first_words_seconds_count", {}),
    )
    await run(tmp_path, Engine(""), {1: "silence.ogg"}, voice(1))
    assert counts.delta() == [1, 1, 0]  # no words: no first-words latency


async def test_an_unreadable_recording_is_counted_failed(tmp_path):
    counts = Counts(("voicebot_jobs_total", {"outcome": "failed"}), ("voicebot_realtime_factor_ratio_count", {}))
    await run(tmp_path, Engine("never"), {1: "random.ogg"}, voice(1))
    assert counts.delta() == [1, 0]


async def test_the_queue_gauges_read_the_waiting_jobs():
    taken, release = asyncio.Event(), asyncio.Event()

    async def handle(job):
        taken.set()
        await release.wait()

    queue = JobQueue(handle, workers=1, maxsize=10)
    queue.start()
    metrics.watch_queue(queue)
    try:
        queue.submit("first")
        await taken.wait()  # the worker took it
        queue.submit("second")
        queue.submit("third")
        await asyncio.sleep(0.05)
        assert value("voicebot_queue_running_jobs") == 1
        assert value("voicebot_queue_waiting_jobs") == 2
        assert value("voicebot_queue_oldest_job_age_seconds") > 0.04  # "second" has waited that long at least
        release.set()
        await queue.join()
        assert value("voicebot_queue_waiting_jobs") == value("voicebot_queue_oldest_job_age_seconds") == 0
    finally:
        await queue.stop()
        metrics.unwatch_queue(queue)
    assert value("voicebot_queue_running_jobs") == 0  # nothing watched: the gauges read 0


# -- what the engines and the pool record -------------------------------------------------------


class Server:
    """A speech server in process: its answers carry the given Whisper signals; it fails the
    first ``failures`` requests as unreachable."""

    def __init__(self, failures=0, **signals):
        self.failures, self.signals, self.lock = failures, signals, threading.Lock()

    def ping(self, timeout):
        pass

    def transcribe(self, samples, language):
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise EndpointError("connection refused", down=True)
        return Heard("en", 0.9, (Segment(0.0, len(samples) / 16_000, "thank you " * 30, **self.signals),))


def test_segments_dropped_as_hallucinations_are_counted_by_guard():
    voice_samples = audio.decode(FIXTURES / "long.ogg")  # two chunks
    pool = EndpointPool([Endpoint("http://guarded:8000/v1", Server(compression_ratio=3.1))])
    counts = Counts(
        ("voicebot_guard_hits_total", {"guard": "compression_ratio"}),
        ("voicebot_guard_hits_total", {"guard": "no_speech_prob"}),
        ("voicebot_guard_hits_total", {"guard": "silence"}),
        ("voicebot_endpoint_requests_total", {"endpoint": "guarded:8000/v1"}),
    )
    engine = RemoteTranscriber(pool, kind="openai", model_name="m")
    try:
        result = engine.transcribe(voice_samples)
    finally:
        engine.close()
    loops, no_speech, silence, requests = counts.delta()
    assert result.no_speech and requests >= 2
    assert (loops, no_speech, silence) == (requests, 0, 1)  # every chunk's segment dropped


def test_each_endpoints_requests_errors_and_latency_are_counted():
    pool = EndpointPool([Endpoint("http://flaky:8000/v1", Server(failures=1))])
    counts = Counts(
        ("voicebot_endpoint_requests_total", {"endpoint": "flaky:8000/v1"}),
        ("voicebot_endpoint_errors_total", {"endpoint": "flaky:8000/v1", "kind": "down"}),
        ("voicebot_endpoint_request_seconds_count", {"endpoint": "flaky:8000/v1"}),
    )
    heard = pool.call(lambda client: client.transcribe(np.zeros(16_000, dtype=np.float32), "en"))
    assert heard.language == "en"
    assert counts.delta() == [2, 1, 1]  # refused once, then answered (after its probe)
