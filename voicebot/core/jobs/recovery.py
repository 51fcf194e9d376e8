"""Jobs that come back: after a restart (resume) and after a wait (deferral).

A job that cannot go on now (a flood limit longer than the adapter sleeps through, an
outage) is deferred: the journal marks it pending until ``not_before`` and a timer brings it
back; a restart in between finds it in the journal and waits out the rest. A job a crash
left unfinished is resumed from the journal with the messages it had already created, so
it edits them instead of sending new ones. Nothing is sent from here: every message is
delivery's business, where each Telegram error has its answer.

Example::

    recovery = Recovery(pipeline, state.journal, delivery, chat, say)   # the pipeline is the JobSink
    await recovery.resume()                     # at start
    await recovery.defer(job, 600, "FLOOD_WAIT")
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from loguru import logger

from voicebot import metrics
from voicebot.core.delivery import REPLY, Answer, Delivery
from voicebot.core.ports import Chat
from voicebot.errors import Kind, TelegramError
from voicebot.messages import ChatKind, IncomingMessage, Sent
from voicebot.state.journal import FAILED, JobRecord, Journal

from .job import Job

MAX_RETRIES = 10  # deferrals before a job is given up
RETRY_BACKOFF_S = (5, 30, 120, 600, 1800, 3600)


class JobSink(Protocol):
    """Where recovery hands back the jobs it resumes or brings back after a wait (the pipeline)."""

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when the queue is full (recovery tries again later)."""

    async def give_up(self, job: Job, reason: str, html: str) -> None:
        """Finish ``job`` as failed, its placeholder edited into ``html``."""


class Recovery:
    """Resumes unfinished jobs from the journal and brings deferred ones back on time."""

    def __init__(self, sink: JobSink, journal: Journal, delivery: Delivery, chat: Chat, say: Callable[..., str]):
        self.sink, self.journal, self.delivery, self.chat, self.say = sink, journal, delivery, chat, say
        self._timers: set[asyncio.Task] = set()
        self._back = asyncio.Event()  # set (and replaced) when Telegram is reachable again

    async def resume(self) -> int:
        """Requeue the jobs a crash or restart left unfinished; returns how many.

        A poison job (started too often) gets its placeholder edited into the reason."""
        resumed = 0
        for record in self.journal.unfinished():
            try:
                resumed += await self._resume_one(record)
            except Exception:
                logger.exception("could not resume job {}", record.id)
        if resumed:
            logger.info("resumed {} unfinished job(s)", resumed)
        return resumed

    async def defer(self, job: Job, seconds: float, reason: str, *, outage: bool = False) -> None:
        """Come back to ``job`` in ``seconds`` (sooner for an ``outage`` of Telegram, when
        :meth:`retry_outages` says it is back); the journal keeps it across a restart."""
        job.retries += 1
        if job.retries > MAX_RETRIES:
            await self.sink.give_up(job, f"{reason}; {MAX_RETRIES} retries", self.say("failed"))
            return
        logger.info("message {} in chat {} waits {:.0f}s: {}", job.msg.message_id, job.msg.chat_id, seconds, reason)
        metrics.deferred()
        if job.job_id:
            self.journal.defer(job.job_id, time.time() + seconds)
        self._later(job.job_id, job, seconds, outage=outage)

    def retry_outages(self) -> None:
        """Telegram is back: the jobs deferred for not reaching it go now."""
        back, self._back = self._back, asyncio.Event()
        back.set()

    def backoff(self, job: Job) -> float:
        """How long to wait after an outage: longer with each retry."""
        return RETRY_BACKOFF_S[min(job.retries, len(RETRY_BACKOFF_S) - 1)]

    def stop(self) -> None:
        """Cancel the timers; their jobs wait in the journal for the next start."""
        for timer in list(self._timers):
            timer.cancel()

    async def _resume_one(self, record: JobRecord) -> int:
        sent = {slot: Sent(chat_id, message_id) for slot, (chat_id, message_id) in record.sent.items()}
        target = record.payload.get("target", REPLY)
        stub = IncomingMessage(
            chat_id=record.chat_id,
            message_id=record.message_id,
            chat_kind=ChatKind.PRIVATE,
            sender_id=None,
            outgoing=False,
            peer=record.payload.get("peer", ""),
        )
        if record.state == FAILED:  # poison
            answer = Answer(stub, record.id, target, sent=sent, created_at=record.created_at)
            await self.delivery.give_up(answer, self.say("gave_up", attempts=record.attempts))
            return 0
        try:
            msg = await self.chat.fetch(record.chat_id, record.message_id, stub.peer)
        except TelegramError as exc:
            if exc.kind in (Kind.WAIT, Kind.RETRY):
                self._later(record.id, None, exc.seconds or RETRY_BACKOFF_S[1])
                return 0
            msg = None
        if msg is None or msg.media is None:
            self.journal.fail(record.id, "message is gone")
            answer = Answer(stub, record.id, target, sent=sent, created_at=record.created_at)
            await self.delivery.give_up(answer, self.say("gone"))
            return 0
        answer = Answer(
            msg, record.id, target, sent=sent, created_at=record.created_at, adopt=True, private=msg.media.view_once
        )
        job = Job(
            answer, notice=record.payload.get("notice"), failure=record.payload.get("failure"), retries=record.retries
        )
        wait = record.not_before - time.time()
        if wait > 0:
            self._later(record.id, job, wait)
        elif not self.sink.submit(job):
            self._later(record.id, job, RETRY_BACKOFF_S[0])
        return 1

    def _later(self, job_id: int | None, job: Job | None, seconds: float, *, outage: bool = False) -> None:
        """Submit ``job`` (or, with None, resume ``job_id`` from the journal) after ``seconds``,
        or when Telegram is back for an ``outage``."""
        back = self._back

        async def wake() -> None:
            if outage:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(back.wait(), seconds)
            else:
                await asyncio.sleep(seconds)
            if job is None:
                record = self.journal.get(job_id) if job_id else None
                if record is not None and record.state in ("pending", "running"):
                    await self._resume_one(record)
            elif not self.sink.submit(job):
                self._later(job_id, job, RETRY_BACKOFF_S[0])

        timer = asyncio.create_task(wake())
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
