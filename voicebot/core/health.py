"""When a running job counts as wedged: the rule that withholds the heartbeat (``voicebot health``).

A job may run for ``max(STUCK_JOB_SECONDS, STUCK_JOB_FACTOR × its audio length)``: the
floor covers the download, flood waits and a short voice on a slow machine; the factor is far
beyond any engine's real-time factor on the hardware it is meant for. Past that, a worker is
taken to be stuck (an engine that never returns), the heartbeat stops, ``health`` fails, the
container is restarted and the journal resumes the job (or gives it up as poison).

Example::

    stuck = wedged(pipeline.running_jobs(), time.monotonic(), floor_s=600, factor=10)
    if stuck is None:
        write_heartbeat(data_dir)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RunningJob:
    """One job a worker is on: where it came from, since when, and how long its audio is."""

    chat_id: int
    message_id: int
    started: float  # time.monotonic() when the worker took it
    audio_s: float | None = None  # the recording's length, once probed


@dataclass(frozen=True)
class Wedged:
    """A job past its limit, and by how much."""

    job: RunningJob
    ran_s: float
    limit_s: float


def limit_for(job: RunningJob, *, floor_s: float, factor: float) -> float:
    """How long ``job`` may run: the floor, or ``factor`` × its audio if that is longer."""
    return max(floor_s, factor * (job.audio_s or 0.0))


def wedged(
    jobs: Iterable[RunningJob], now: float, *, floor_s: float, factor: float, servers_down: bool = False
) -> Wedged | None:
    """The job furthest past its limit at ``now`` (monotonic), or None.

    ``servers_down``: every speech server is down, so the jobs are waiting for one (the pool
    says so in the log), not stuck; restarting would not bring a server back."""
    if servers_down:
        return None
    worst = None
    for job in jobs:
        ran, limit = now - job.started, limit_for(job, floor_s=floor_s, factor=factor)
        if ran > limit and (worst is None or ran - limit > worst.ran_s - worst.limit_s):
            worst = Wedged(job, ran, limit)
    return worst
