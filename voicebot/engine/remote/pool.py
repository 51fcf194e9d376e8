"""The endpoint pool: which transcription server gets the next request, and what a failure costs it.

Each request goes to the least busy healthy server (at most ``capacity`` requests in flight
on each, so a slow CPU server is not buried under a long voice's chunks). A failure benches
the server for a backoff that doubles with each failure in a row (1 s … 60 s); a 429 benches
it for the server's ``Retry-After`` instead. When its bench is over, the next caller that
needs a server probes it (``client.ping()``) before sending it real work. The pool knows
nothing of any protocol: the clients (``openai_engine``, ``wyoming_engine``) raise
:class:`EndpointError` and the pool decides.

Example::

    pool = EndpointPool([Endpoint("http://gpu1:8000/v1", client1), Endpoint(..., client2)])
    result = pool.call(lambda client: client.transcribe(samples, "en"))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from loguru import logger

from voicebot import metrics
from voicebot.engine.base import EndpointStatus
from voicebot.errors import Interrupted, TranscriptionError, VoicebotError

T = TypeVar("T")
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
PROBE_TIMEOUT_S = 5.0


class EndpointError(VoicebotError):
    """A request to one server failed.

    ``retry``: another try (there or elsewhere) may succeed: connection refused or reset,
    timeout, 5xx, 429. Otherwise the request itself is wrong (401, 404 model, 400) and
    every server would refuse it. ``retry_after``: the server's ``Retry-After``, seconds.
    ``down``: the server is unreachable (not merely slow or failing).
    """

    def __init__(self, message: str, *, retry: bool = True, retry_after: float | None = None, down: bool = False):
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after
        self.down = down


class AllDown(VoicebotError):
    """Every server is down (benched after failing) and the caller asked not to wait, or
    waited ``give_up_after`` seconds (a one-shot command)."""


def error_kind(exc: EndpointError) -> str:
    """What a failed request says about its server, as ``voicebot_endpoint_errors_total`` labels it."""
    if exc.retry_after is not None:
        return "rate_limited"
    if not exc.retry:
        return "refused"
    return "down" if exc.down else "failing"


def display_name(url: str) -> str:
    """``host:port/path`` of an endpoint URL: what logs and ``.status`` show (no scheme clutter,
    never credentials, which config refuses in URLs anyway)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path.rstrip('/')}"


@dataclass
class Endpoint:
    """One server and what the pool knows about it."""

    url: str
    client: Any  # has .ping() and whatever the engine calls through Pool.call
    name: str = ""
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    failures_in_a_row: int = 0
    benched_until: float = 0.0
    bench_reason: str = ""  # "down", "failing" or "rate-limited"
    probing: bool = False
    last_error: str = ""
    last_used: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.name = self.name or display_name(self.url)


class EndpointPool:
    """Thread-safe scheduling of requests over several endpoints.

    ``capacity``: requests in flight per endpoint. ``attempts``: failed tries of one request
    that reached a server (5xx, timeout) before giving up; unreachable servers do not count,
    since waiting for them to come back is the point (``wait=True``). ``give_up_after``: how
    long one call waits with every server down before :class:`AllDown` (None: forever, as the
    bot does: its jobs are journaled; a one-shot command must end).
    """

    def __init__(
        self,
        endpoints: list[Endpoint],
        *,
        capacity: int = 1,
        attempts: int = 4,
        give_up_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not endpoints:
            raise ValueError("no endpoints")
        self.endpoints = endpoints
        self.capacity = capacity
        self.attempts = attempts
        self.give_up_after = give_up_after
        self._clock = clock
        self._lock = threading.Condition()
        self._closed = threading.Event()
        self._said_all_down = False

    # -- public --------------------------------------------------------------------------

    def call(self, request: Callable[[Any], T], *, wait: bool = True, what: str = "request") -> T:
        """Run ``request(client)`` on the least busy healthy endpoint, retrying failures on
        whichever endpoint is best next, with backoff.

        ``wait=False``: raise :class:`AllDown` as soon as every endpoint is down (the caller
        has a fallback). Raises :class:`TranscriptionError` when the request is refused as
        wrong, or failed ``attempts`` times on servers that were up.

        Example::

            text = pool.call(lambda c: c.transcribe(chunk, "en"), what="chunk 3")
        """
        tries = 0
        deadline = None if self.give_up_after is None else self._clock() + self.give_up_after
        while True:
            endpoint = self._acquire(wait=wait, deadline=deadline)
            started = self._clock()
            try:
                result = request(endpoint.client)
            except EndpointError as exc:
                self._release(endpoint, exc)
                metrics.request(endpoint.name, error=error_kind(exc))
                logger.warning("{} on {} failed: {}", what, endpoint.name, exc)
                if not exc.retry:
                    raise TranscriptionError(f"{endpoint.name}: {exc}") from exc
                tries += not exc.down and exc.retry_after is None
                if tries >= self.attempts:
                    raise TranscriptionError(f"{what} failed {tries} times; last: {endpoint.name}: {exc}") from exc
                continue
            except BaseException:  # not the server's doing (a bug, an interrupt): neither done nor failed
                self._release(endpoint, None, counted=False)
                raise
            self._release(endpoint, None)
            took = self._clock() - started
            metrics.request(endpoint.name, took)
            logger.debug("{} on {} took {:.2f}s", what, endpoint.name, took)
            return result

    def status(self) -> list[EndpointStatus]:
        """Each endpoint as ``.status`` shows it."""
        now = self._clock()
        with self._lock:
            out = []
            for e in self.endpoints:
                if e.benched_until > now or e.failures_in_a_row:
                    state = e.bench_reason or "down"
                    when = f"next try in {e.benched_until - now:.0f}s" if e.benched_until > now else "to be probed"
                    detail = f"{e.last_error}; {when}"
                else:
                    state, detail = ("busy" if e.in_flight >= self.capacity else "ok"), ""
                out.append(EndpointStatus(e.name, state, e.in_flight, e.done, e.failed, detail))
            return out

    def all_down(self) -> bool:
        """Every endpoint is benched for being unreachable or failing (not merely busy)."""
        now = self._clock()
        with self._lock:
            return all(e.benched_until > now and e.bench_reason != "rate-limited" for e in self.endpoints)

    def close(self) -> None:
        """Wake every waiting caller with :class:`Interrupted` (shutdown)."""
        self._closed.set()
        with self._lock:
            self._lock.notify_all()

    # -- scheduling ----------------------------------------------------------------------

    def _acquire(self, *, wait: bool, deadline: float | None = None) -> Endpoint:
        with self._lock:
            while True:
                self._check_open()
                now = self._clock()
                ready = [
                    e
                    for e in self.endpoints
                    if e.benched_until <= now and not e.probing and e.in_flight < self.capacity
                ]
                healthy = [e for e in ready if not e.failures_in_a_row]
                if healthy:
                    # Least busy first; among equals the one idle longest, so load spreads.
                    chosen = min(healthy, key=lambda e: (e.in_flight, e.last_used))
                    chosen.in_flight += 1
                    chosen.last_used = now
                    self._said_all_down = False
                    return chosen
                if ready:  # a benched endpoint's time is up: probe it before trusting it
                    probe = min(ready, key=lambda e: e.benched_until)
                    probe.probing = True
                    self._lock.release()
                    try:
                        alive = self._probe(probe)
                    finally:
                        self._lock.acquire()
                        probe.probing = False
                        self._lock.notify_all()
                    if alive:
                        probe.in_flight += 1
                        probe.last_used = self._clock()
                        return probe
                    continue
                down = all(e.benched_until > now and e.bench_reason != "rate-limited" for e in self.endpoints)
                if down:
                    if not wait:
                        raise AllDown("every transcription server is down")
                    if deadline is not None and now >= deadline:
                        raise AllDown(
                            f"no transcription server answered in {self.give_up_after:g} s: "
                            + "; ".join(f"{e.name} ({e.last_error or e.bench_reason})" for e in self.endpoints)
                        )
                    if not self._said_all_down:
                        logger.warning(
                            "every transcription server is down or failing; waiting for one to "
                            "come back (the job stays journaled)"
                        )
                        self._said_all_down = True
                # Wake when the first bench ends, or when a request finishes (notify).
                until = min((e.benched_until for e in self.endpoints if e.benched_until > now), default=now + 1)
                if deadline is not None:
                    until = min(until, deadline)
                self._lock.wait(timeout=min(max(until - now, 0.01), 1.0))

    def _probe(self, endpoint: Endpoint) -> bool:
        """Ask a benched endpoint whether it is back (outside the lock: it is network I/O)."""
        try:
            endpoint.client.ping(timeout=PROBE_TIMEOUT_S)
        except EndpointError as exc:
            with self._lock:
                self._bench(endpoint, exc)
            logger.info("{} is still unavailable: {}", endpoint.name, exc)
            return False
        logger.info("{} answers again", endpoint.name)
        return True

    def _release(self, endpoint: Endpoint, error: EndpointError | None, *, counted: bool = True) -> None:
        with self._lock:
            endpoint.in_flight -= 1
            if not counted:
                pass
            elif error is None:
                endpoint.done += 1
                if endpoint.failures_in_a_row:
                    endpoint.failures_in_a_row = 0
                    endpoint.benched_until = 0.0
                    endpoint.bench_reason = ""
            elif error.retry:
                endpoint.failed += 1
                self._bench(endpoint, error)
            self._lock.notify_all()

    def _bench(self, endpoint: Endpoint, error: EndpointError) -> None:
        """Take ``endpoint`` out of rotation for a while (caller holds the lock)."""
        endpoint.last_error = str(error)[:200]
        if error.retry_after is not None:
            pause = min(max(error.retry_after, 0.0), 3600.0)
            endpoint.bench_reason = "rate-limited"
        else:
            endpoint.failures_in_a_row += 1
            pause = min(BACKOFF_FIRST_S * 2 ** (endpoint.failures_in_a_row - 1), BACKOFF_MAX_S)
            endpoint.bench_reason = "down" if error.down else "failing"
        endpoint.benched_until = self._clock() + pause

    def _check_open(self) -> None:
        # The interpreter is exiting (the main thread is done): a worker thread waiting
        # here would keep the process alive forever.
        if self._closed.is_set() or not threading.main_thread().is_alive():
            raise Interrupted("shutting down")
