"""One voice's job as it travels the queue, and the pipeline's running totals.

Example::

    job = Job(Answer(msg, job_id=7, target=REPLY))
    job.msg.message_id, job.job_id
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from voicebot.core.delivery.answer import Answer
from voicebot.messages import IncomingMessage


@dataclass
class Job:
    answer: Answer
    queued_at: float = field(default_factory=time.monotonic)
    notice: str | None = None  # deliver these words instead of transcribing (a refusal)
    failure: str | None = None  # with a notice: why the job ends as failed once it is delivered
    opening: asyncio.Task | None = None  # the placeholder on its way, while the work starts
    retries: int = 0
    started: float | None = None  # monotonic time the worker began it (download), for first-words latency
    words_shown: bool = False  # its first words have reached the user (progress or the transcript)

    @property
    def msg(self) -> IncomingMessage:
        return self.answer.msg

    @property
    def job_id(self) -> int | None:
        return self.answer.job_id


@dataclass
class Stats:
    """Totals since start, for logs and the status command."""

    jobs_done: int = 0
    jobs_failed: int = 0
    cache_hits: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    started_at: float = field(default_factory=time.time)

    @property
    def average_rtf(self) -> float | None:
        """Processing time ÷ audio time: 0.1 means ten times faster than real time."""
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else None
