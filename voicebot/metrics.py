"""Prometheus metrics: what the bot counts, and the opt-in HTTP endpoint that serves them.

The only importer of ``prometheus_client``. The core, the engines and the Telegram adapter
record through the small functions below; each is a counter increment or a histogram
observation (microseconds, no I/O), and none ever raises: a metric that cannot be recorded
is logged at DEBUG and the job goes on. Nothing is served unless ``METRICS_PORT`` is set;
then :func:`start` serves ``/metrics`` from its own thread, never on the event loop.
Every metric is described in docs/metrics.md.

Example::

    server = metrics.start("127.0.0.1", 9464)   # http://127.0.0.1:9464/metrics
    metrics.job("done")
    metrics.transcribed(audio_s=12.0, took_s=1.5)
    server.stop()
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Protocol

from loguru import logger
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

disable_created_metrics()  # no *_created series: one series per thing counted
# The bot's own registry: voicebot_* and the standard process_* metrics, nothing a library adds.
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

OUTCOMES = ("done", "no_speech", "cached", "refused", "queue_full", "failed")
GUARDS = ("silence", "no_speech_prob", "compression_ratio")

JOBS = Counter(
    "voicebot_jobs_total", "Jobs decided, by outcome (one per voice handled).", ["outcome"], registry=REGISTRY
)
GIVEN_UP = Counter(
    "voicebot_jobs_given_up_total", "Jobs whose answer could not be delivered (given up for good).", registry=REGISTRY
)
DEFERRED = Counter(
    "voicebot_jobs_deferred_total", "Times a job was put off (a long flood wait, an outage).", registry=REGISTRY
)
AUDIO = Counter("voicebot_audio_seconds_total", "Seconds of audio transcribed.", registry=REGISTRY)
RTF = Histogram(
    "voicebot_realtime_factor_ratio",
    "Processing seconds per second of audio, per transcription (0.1: ten times faster than real time).",
    buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)
FIRST_WORDS = Histogram(
    "voicebot_first_words_seconds",
    "Seconds from a job's start (download) until its first words are shown to the user.",
    buckets=(0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0),
    registry=REGISTRY,
)
CACHE_HITS = Counter("voicebot_cache_hits_total", "Recordings answered from the transcript cache.", registry=REGISTRY)
FLOOD_WAITS = Counter(
    "voicebot_flood_waits_total",
    "Telegram flood waits, by what was done: waited out, or raised (deferred job, skipped progress edit).",
    ["action"],
    registry=REGISTRY,
)
FLOOD_SECONDS = Counter(
    "voicebot_flood_wait_seconds_total", "Seconds of flood waits Telegram asked for.", registry=REGISTRY
)
REQUESTS = Counter(
    "voicebot_endpoint_requests_total", "Requests sent to a transcription server.", ["endpoint"], registry=REGISTRY
)
ERRORS = Counter(
    "voicebot_endpoint_errors_total",
    "Failed requests to a transcription server, by kind: down, failing, rate_limited, refused.",
    ["endpoint", "kind"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "voicebot_endpoint_request_seconds",
    "Seconds a successful request to a transcription server took.",
    ["endpoint"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0),
    registry=REGISTRY,
)
GUARD_HITS = Counter(
    "voicebot_guard_hits_total",
    "Hallucination guards: recordings with no speech (silence), segments dropped by no-speech "
    "probability or compression ratio.",
    ["guard"],
    registry=REGISTRY,
)
WAITING = Gauge("voicebot_queue_waiting_jobs", "Jobs queued, not started yet.", registry=REGISTRY)
RUNNING = Gauge("voicebot_queue_running_jobs", "Jobs being worked on.", registry=REGISTRY)
OLDEST = Gauge(
    "voicebot_queue_oldest_job_age_seconds", "Seconds the oldest waiting job has waited (0: none).", registry=REGISTRY
)

# Every known label value exists from the start, at 0, so rate() and alerts see a series.
for _outcome in OUTCOMES:
    JOBS.labels(_outcome)
for _guard in GUARDS:
    GUARD_HITS.labels(_guard)
for _action in ("waited", "raised"):
    FLOOD_WAITS.labels(_action)


def _safe(record: Callable[..., None]) -> Callable[..., None]:
    """Recording a metric never fails the caller."""

    @functools.wraps(record)
    def wrapper(*args, **kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as exc:
            logger.debug("metric {} not recorded: {}", record.__name__, exc)

    return wrapper


# -- recording ------------------------------------------------------------------------------


@_safe
def job(outcome: str) -> None:
    """One job decided: ``done``, ``no_speech``, ``cached``, ``refused``, ``queue_full``, ``failed``."""
    JOBS.labels(outcome).inc()
    if outcome == "cached":
        CACHE_HITS.inc()


@_safe
def given_up() -> None:
    GIVEN_UP.inc()


@_safe
def deferred() -> None:
    DEFERRED.inc()


@_safe
def transcribed(*, audio_s: float, took_s: float) -> None:
    """A transcription finished: ``audio_s`` seconds of audio in ``took_s`` seconds."""
    AUDIO.inc(max(audio_s, 0.0))
    if audio_s > 0:
        RTF.observe(took_s / audio_s)


@_safe
def first_words(seconds: float) -> None:
    FIRST_WORDS.observe(max(seconds, 0.0))


@_safe
def flood_wait(seconds: float, *, waited: bool) -> None:
    FLOOD_WAITS.labels("waited" if waited else "raised").inc()
    FLOOD_SECONDS.inc(max(seconds, 0.0))


@_safe
def request(endpoint: str, seconds: float | None = None, *, error: str | None = None) -> None:
    """One request to ``endpoint``: its seconds when it succeeded, or the kind of its ``error``."""
    REQUESTS.labels(endpoint).inc()
    if error is not None:
        ERRORS.labels(endpoint, error).inc()
    elif seconds is not None:
        LATENCY.labels(endpoint).observe(max(seconds, 0.0))


@_safe
def guard(name: str) -> None:
    """A guard fired: ``silence``, ``no_speech_prob``, ``compression_ratio`` (hallucinations dropped)
    or ``hints_silenced`` (a window the vocabulary made empty, decoded again without it)."""
    GUARD_HITS.labels(name).inc()


# -- the queue, read when scraped -----------------------------------------------------------


class Queue(Protocol):
    waiting: int
    running: int
    oldest_wait: float


_watched: list[Queue] = []  # the queue the gauges read: the last one watched
_lock = threading.Lock()


def watch_queue(queue: Queue) -> None:
    """Let the queue gauges read ``queue`` at each scrape (from the server's thread)."""
    with _lock:
        _watched[:] = [queue]


def unwatch_queue(queue: Queue) -> None:
    with _lock:
        if _watched and _watched[0] is queue:
            _watched.clear()


def _reading(attribute: str) -> Callable[[], float]:
    def read() -> float:
        with _lock:
            queue = _watched[0] if _watched else None
        try:
            return float(getattr(queue, attribute)) if queue is not None else 0.0
        except Exception:  # a scrape never fails for it
            return 0.0

    return read


WAITING.set_function(_reading("waiting"))
RUNNING.set_function(_reading("running"))
OLDEST.set_function(_reading("oldest_wait"))


# -- serving --------------------------------------------------------------------------------


class Server:
    """The running ``/metrics`` endpoint (its own thread)."""

    def __init__(self, httpd, thread: threading.Thread):
        self._httpd, self._thread = httpd, thread
        host, port = httpd.server_address[:2]
        self.host, self.port = host, port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def stop(self) -> None:
        """Stop serving and free the port (blocks up to half a second: call it off the loop)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start(host: str, port: int) -> Server:
    """Serve the metrics on ``http://host:port/metrics``; raises :class:`OSError` when the port
    cannot be bound."""
    httpd, thread = start_http_server(port, addr=host, registry=REGISTRY)
    return Server(httpd, thread)
