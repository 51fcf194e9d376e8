"""The job journal: what makes every voice get exactly one answer across crashes.

A job is written here (``pending``) before any work or any message is sent; every message
the bot then creates for it is recorded with its chat (``sent``), so a resumed job edits
its own messages instead of sending new ones. "Was this voice handled?" is answered by
the journal alone: backfill and Telegram's catch-up may hand the same message over again.

States: ``pending`` (queued, or waiting for ``not_before``), ``running`` (started
``attempts`` times), ``done``, ``failed``. A job started :data:`MAX_ATTEMPTS` times without
finishing is poison (it crashes or hangs the bot) and is given up at the next start.

Example::

    journal = Journal(db)
    job = journal.record(chat_id=42, message_id=7, document_id=555, payload={"target": "reply"})
    if job is not None:                      # None: this message is already journaled
        journal.start(job.id)
        journal.sent(job.id, "1", chat_id=42, message_id=8)
        journal.done(job.id)
    journal.handled(42, 7)                   # True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from .db import Database, StateError

MAX_ATTEMPTS = 3  # a job started this many times without finishing is a poison job
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
_UNFINISHED = (PENDING, RUNNING)
_COLUMNS = "id, chat_id, message_id, document_id, state, payload, attempts, retries, not_before, created_at, reason"


@dataclass(frozen=True)
class JobRecord:
    """One journal row, with the messages created for it: ``sent[slot] = (chat_id, message_id)``."""

    id: int
    chat_id: int
    message_id: int
    document_id: int | None
    state: str
    payload: dict[str, Any]
    attempts: int = 0
    retries: int = 0
    not_before: float = 0.0
    created_at: float = 0.0
    reason: str | None = None
    sent: dict[str, tuple[int, int]] = field(default_factory=dict)


class Journal:
    """The ``jobs`` and ``sent`` tables."""

    def __init__(self, db: Database):
        self._db = db

    def record(
        self, chat_id: int, message_id: int, document_id: int | None, payload: Mapping[str, Any]
    ) -> JobRecord | None:
        """Journal a job as 'pending' before any work; ``None`` if this message already has one.

        ``payload`` must be JSON-serialisable: whatever is needed to handle the message
        again after a restart (how to reach its chat, where the answer goes).

        Example::

            journal.record(42, 7, 555, {"target": "reply"})   # JobRecord(...)
            journal.record(42, 7, 555, {})                     # None
        """
        payload_json = json.dumps(dict(payload), ensure_ascii=False)  # TypeError before any write
        now = self._db.clock()
        with self._db.tx() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (chat_id, message_id, document_id, state, payload, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO NOTHING",
                (chat_id, message_id, document_id, PENDING, payload_json, now, now),
            )
            if cursor.rowcount == 0:
                return None
            job_id = cursor.lastrowid
        logger.debug("journaled job {} for message {}/{}", job_id, chat_id, message_id)
        return JobRecord(
            id=job_id,
            chat_id=chat_id,
            message_id=message_id,
            document_id=document_id,
            state=PENDING,
            payload=json.loads(payload_json),
            created_at=now,
        )

    def get(self, job_id: int) -> JobRecord | None:
        """The row of ``job_id``, or ``None`` (never recorded, or pruned).

        Example::

            journal.get(job.id).state   # 'pending'
        """
        return self._load("id = ?", (job_id,))

    def find(self, chat_id: int, message_id: int) -> JobRecord | None:
        """The row of the message ``message_id`` in ``chat_id``, or ``None``.

        Example::

            journal.find(42, 7).sent   # {'1': (42, 8)}
        """
        return self._load("chat_id = ? AND message_id = ?", (chat_id, message_id))

    def handled(self, chat_id: int, message_id: int) -> bool:
        """Whether this message has a job at all, finished or not: nothing more to do for it.

        Example::

            journal.handled(42, 7)   # True once recorded
        """
        return (
            self._db.one("SELECT 1 FROM jobs WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)) is not None
        )

    def start(self, job_id: int) -> int:
        """Mark the job as started and count the attempt; return the attempt number (1, 2, …).

        Raises :class:`StateError` if the job is unknown or already finished: the caller
        must not do its work again.

        Example::

            journal.start(job.id)   # 1
        """
        # No RETURNING clause: it needs SQLite 3.35, older than some distributions ship.
        with self._db.tx() as conn:
            changed = conn.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, not_before = 0, updated_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (RUNNING, self._db.clock(), job_id, *_UNFINISHED),
            ).rowcount
            if not changed:
                raise StateError(f"job {job_id} is unknown or already finished")
            return int(conn.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])

    def sent(self, job_id: int, slot: str, chat_id: int, message_id: int) -> None:
        """Record a message the bot created for this job (``slot``: '1', '2'… or 'txt').

        Example::

            journal.sent(job.id, "1", chat_id=42, message_id=8)   # the placeholder
        """
        with self._db.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sent (job_id, slot, chat_id, message_id) VALUES (?, ?, ?, ?)",
                (job_id, slot, chat_id, message_id),
            )

    def unsent(self, job_id: int, slot: str) -> None:
        """Forget a recorded message (it was deleted, or cannot be edited any more).

        Example::

            journal.unsent(job.id, "1")
        """
        with self._db.tx() as conn:
            conn.execute("DELETE FROM sent WHERE job_id = ? AND slot = ?", (job_id, slot))

    def set_payload(self, job_id: int, payload: Mapping[str, Any]) -> None:
        """Replace the payload (e.g. the answer now goes to Saved Messages).

        Example::

            journal.set_payload(job.id, {**job.payload, "target": "saved"})
        """
        self._update(job_id, "payload = ?", (json.dumps(dict(payload), ensure_ascii=False),))

    def defer(self, job_id: int, not_before: float) -> None:
        """Put a started job back to wait until ``not_before`` (Unix time): a flood wait or
        an outage, not a crash, so the attempt does not count towards the poison limit.

        Example::

            journal.defer(job.id, time.time() + 600)
        """
        self._update(
            job_id,
            "state = ?, not_before = ?, retries = retries + 1, attempts = max(0, attempts - 1)",
            (PENDING, float(not_before)),
        )

    def done(self, job_id: int) -> bool:
        """Finish the job as 'done'. ``False`` (and nothing changes) if already finished.

        Example::

            journal.done(job.id)   # True
        """
        return self._finish(job_id, DONE, None)

    def fail(self, job_id: int, reason: str) -> bool:
        """Finish the job as 'failed' for good (never resumed). ``False`` if already finished.

        Example::

            journal.fail(job.id, "download failed")   # True
        """
        return self._finish(job_id, FAILED, reason)

    def unfinished(self) -> list[JobRecord]:
        """Jobs to resume after a restart ('pending' or 'running'), oldest first.

        Jobs already started :data:`MAX_ATTEMPTS` times are poison: they are marked
        'failed' with reason 'too many attempts' and returned too, so that the caller
        can tell the sender; check ``state``.

        Example::

            for job in journal.unfinished():
                resume(job)
        """
        with self._db.tx() as conn:
            gave_up = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM jobs WHERE state IN (?, ?) AND attempts >= ?", (*_UNFINISHED, MAX_ATTEMPTS)
                )
            ]
            conn.executemany(
                "UPDATE jobs SET state = ?, reason = 'too many attempts', updated_at = ? WHERE id = ?",
                [(FAILED, self._db.clock(), job_id) for job_id in gave_up],
            )
        if gave_up:
            logger.warning("gave up on {} job(s) after {} attempts: {}", len(gave_up), MAX_ATTEMPTS, gave_up)
        marks = ",".join("?" * len(gave_up))
        where = "state IN (?, ?)" + (f" OR id IN ({marks})" if gave_up else "")
        return self._load_all(f"{where} ORDER BY id", (*_UNFINISHED, *gave_up))

    def prune(self, older_than_days: int = 30) -> int:
        """Delete 'done' and 'failed' jobs finished more than ``older_than_days`` ago; return
        how many. Unfinished jobs are never pruned. Keep the window longer than backfill
        looks back, or a pruned voice would be answered again.

        Example::

            journal.prune(30)   # 12
        """
        cutoff = self._db.clock() - older_than_days * 86_400
        with self._db.tx() as conn:
            count = conn.execute(
                "DELETE FROM jobs WHERE state IN (?, ?) AND updated_at < ?", (DONE, FAILED, cutoff)
            ).rowcount
        if count:
            logger.info("pruned {} finished job(s) older than {} day(s)", count, older_than_days)
        return count

    def counts(self) -> dict[str, int]:
        """Jobs by state.

        Example::

            journal.counts()   # {'pending': 0, 'running': 1, 'done': 40, 'failed': 2}
        """
        result = dict.fromkeys((PENDING, RUNNING, DONE, FAILED), 0)
        for job_state, n in self._db.all("SELECT state, count(*) FROM jobs GROUP BY state", ()):
            result[job_state] = n
        return result

    def _update(self, job_id: int, assignment: str, values: tuple) -> None:
        with self._db.tx() as conn:
            count = conn.execute(
                f"UPDATE jobs SET {assignment}, updated_at = ? WHERE id = ? AND state IN (?, ?)",
                (*values, self._db.clock(), job_id, *_UNFINISHED),
            ).rowcount
            if count == 0 and conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise StateError(f"job {job_id} is unknown")

    def _finish(self, job_id: int, state: str, reason: str | None) -> bool:
        with self._db.tx() as conn:
            count = conn.execute(
                "UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state IN (?, ?)",
                (state, reason, self._db.clock(), job_id, *_UNFINISHED),
            ).rowcount
            if count == 0 and conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise StateError(f"job {job_id} is unknown")
        if count:
            logger.debug("job {} is {}", job_id, state)
        return bool(count)

    def _load(self, where: str, args: tuple) -> JobRecord | None:
        found = self._load_all(where, args)
        return found[0] if found else None

    def _load_all(self, where: str, args: tuple) -> list[JobRecord]:
        with self._db.tx(write=False) as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where}", args).fetchall()
            sent: dict[int, dict[str, tuple[int, int]]] = {}
            for row in rows:
                sent[row[0]] = {
                    slot: (chat, message)
                    for slot, chat, message in conn.execute(
                        "SELECT slot, chat_id, message_id FROM sent WHERE job_id = ?", (row[0],)
                    )
                }
        return [_record(row, sent[row[0]]) for row in rows]


def _record(row: tuple, sent: dict[str, tuple[int, int]]) -> JobRecord:
    (job_id, chat_id, message_id, document_id, state, payload, attempts, retries, not_before, created_at, reason) = row
    return JobRecord(
        id=job_id,
        chat_id=chat_id,
        message_id=message_id,
        document_id=document_id,
        state=state,
        payload=json.loads(payload),
        attempts=attempts,
        retries=retries,
        not_before=not_before,
        created_at=created_at,
        reason=reason,
        sent=sent,
    )
