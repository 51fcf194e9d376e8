"""The bot's durable state: one SQLite file, ``DATA_DIR/voicebot.db`` (mode 0600).

It holds per-chat settings, the transcript cache (keyed by Telegram document id), the job
journal that makes delivery exactly-once across crashes, backfill bookkeeping and a
full-text index of past transcripts. SQLite is embedded (stdlib :mod:`sqlite3`), so the
bot needs no database server.

Every method is safe to call from the asyncio thread and from worker threads: one
connection, one lock, one statement (or one short transaction) at a time. Each call is
a few milliseconds on local disk; from a coroutine call it directly, or through
``asyncio.to_thread`` if the data directory is on slow storage.

Example::

    with State.in_dir(settings.data_dir) as state:
        job = state.record_job(chat_id=42, message_id=7, document_id=555,
                               payload={"chat_kind": "private"})
        if job is not None:                      # None: this message is already queued
            state.mark_running(job.id)
            state.remember(555, "hello there", "en", 1.5, [(0.0, 1.5, "hello there")])
            state.mark_delivered(job.id, reply_ids=[8])
        state.delivered(42, 7)                   # True
        state.search("hello")                    # [Hit(chat_id=42, message_id=7, ...)] if indexed

Every failure of the database (unreadable file, disk full, a file written by a newer
voicebot) is raised as :class:`StateError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from .errors import VoicebotError

DB_NAME = "voicebot.db"
MAX_ATTEMPTS = 3  # a job started this many times without finishing is a poison job
_BUSY_TIMEOUT_MS = 5_000  # another process (``voicebot status``) may hold a write lock briefly
_SNIPPET_TOKENS = 12
_MARK_OPEN, _MARK_CLOSE, _ELLIPSIS = "«", "»", "…"

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
_UNFINISHED = (PENDING, RUNNING)


class StateError(VoicebotError):
    """The state database cannot be opened or used (corrupt, newer schema, disk full, closed)."""


@dataclass(frozen=True)
class ChatSettings:
    """Per-chat overrides. ``None`` means "follow the global configuration"."""

    auto: bool | None = None  # automatic transcription on/off for this chat
    language: str | None = None  # pinned Whisper language code; None = detect


@dataclass(frozen=True)
class Cached:
    """A finished transcript of one Telegram document, with timed segments for .srt."""

    text: str
    language: str | None
    duration: float
    segments: list[tuple[float, float, str]]


@dataclass(frozen=True)
class JobRecord:
    """One journal row. ``state`` is 'pending', 'running', 'done' or 'failed'."""

    id: int
    chat_id: int
    message_id: int
    document_id: int | None
    state: str
    placeholder_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: float
    reply_ids: list[int] = field(default_factory=list)  # what was sent, once 'done'
    reason: str | None = None  # why it failed, once 'failed'


@dataclass(frozen=True)
class Hit:
    """A search result. ``snippet`` is raw transcript text with the match in «»: escape it."""

    chat_id: int
    message_id: int
    snippet: str
    date: float


# Schema migrations, applied in order; ``PRAGMA user_version`` is how many have run.
# Append only: never edit a released entry, add a new one that alters the old tables.
MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE chat_settings (
        chat_id  INTEGER PRIMARY KEY,
        auto     INTEGER,            -- NULL = follow config, 0/1 = override
        language TEXT                -- NULL = detect
    );
    CREATE TABLE transcript_cache (
        document_id INTEGER PRIMARY KEY,
        text        TEXT NOT NULL,
        language    TEXT,
        duration    REAL NOT NULL,
        segments    TEXT NOT NULL,   -- JSON [[start, end, text], ...]
        created_at  REAL NOT NULL
    );
    -- AUTOINCREMENT: a pruned job's id is never handed out again.
    CREATE TABLE jobs (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id        INTEGER NOT NULL,
        message_id     INTEGER NOT NULL,
        document_id    INTEGER,
        state          TEXT NOT NULL
                       CHECK (state IN ('pending', 'running', 'done', 'failed')),
        placeholder_id INTEGER,
        payload        TEXT NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        reply_ids      TEXT NOT NULL DEFAULT '[]',
        reason         TEXT,
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        UNIQUE (chat_id, message_id)
    );
    CREATE INDEX jobs_by_state ON jobs (state, id);
    CREATE TABLE seen (
        chat_id    INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL
    );
    -- The searchable transcripts. The FTS5 index over ``text`` is not a migration: it
    -- depends on the sqlite3 build, not on the schema version (see _setup_search).
    CREATE TABLE transcripts (
        id         INTEGER PRIMARY KEY,
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        text       TEXT NOT NULL,
        date       REAL NOT NULL,
        UNIQUE (chat_id, message_id)
    );
    CREATE INDEX transcripts_by_date ON transcripts (date);
    """,
]

# External-content FTS5 index over transcripts.text, kept in sync by triggers (the
# pattern from the FTS5 documentation), so the text is stored once.
_FTS_SETUP = """
CREATE VIRTUAL TABLE IF NOT EXISTS transcripts_fts USING fts5(
    text, content='transcripts', content_rowid='id', tokenize='unicode61');
CREATE TRIGGER IF NOT EXISTS transcripts_ai AFTER INSERT ON transcripts BEGIN
    INSERT INTO transcripts_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS transcripts_ad AFTER DELETE ON transcripts BEGIN
    INSERT INTO transcripts_fts (transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS transcripts_au AFTER UPDATE ON transcripts BEGIN
    INSERT INTO transcripts_fts (transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO transcripts_fts (rowid, text) VALUES (new.id, new.text);
END;
"""
_FTS_TRIGGERS = ("transcripts_ai", "transcripts_ad", "transcripts_au")

_warned_no_fts = False  # the fallback is logged once per process, not once per open


def _has_fts5(conn: sqlite3.Connection) -> bool:
    """Whether this sqlite3 build has FTS5 (a module-level function so tests can force False)."""
    options = {row[0] for row in conn.execute("PRAGMA compile_options")}
    if "ENABLE_FTS5" in options:
        return True
    # FTS5 may also be loaded as an extension; trying it is the only sure test.
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._vb_fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp._vb_fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


class State:
    """The open database. Thread-safe; use as a context manager or call :meth:`close`.

    ``clock`` returns the current Unix time; tests pass a fake one to age rows.

    Example::

        state = State(Path("data/voicebot.db"))
        try:
            state.set_auto(42, False)
        finally:
            state.close()
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self.fts = False  # True when search uses the FTS5 index, False for the substring fallback
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file owner-only before SQLite opens it, so it never exists with the
        # umask's mode; SQLite gives the -wal and -shm files the database file's mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        try:
            # check_same_thread=False: the asyncio thread and worker threads share it, and
            # self._lock serialises them. isolation_level=None: we issue BEGIN ourselves,
            # which behaves the same on Python 3.11 and 3.12.
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {self.path}: {exc}") from exc
        try:
            self._configure()
            self._migrate()
            self._setup_search()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{extra}", 0o600)

    @classmethod
    def in_dir(cls, data_dir: Path) -> State:
        """Open ``data_dir/voicebot.db``.

        Example::

            state = State.in_dir(Path("data"))   # data/voicebot.db
        """
        return cls(Path(data_dir) / DB_NAME)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the database. Idempotent; any later call raises :class:`StateError`.

        Example::

            state.close(); state.close()   # the second call does nothing
        """
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")  # cheap; keeps the query planner's stats fresh
            conn.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- settings ----------------------------------------------------------------------

    def chat_settings(self, chat_id: int) -> ChatSettings:
        """The chat's overrides; all ``None`` for a chat never configured.

        Example::

            state.chat_settings(42)   # ChatSettings(auto=None, language=None)
        """
        row = self._one("SELECT auto, language FROM chat_settings WHERE chat_id = ?", (chat_id,))
        if row is None:
            return ChatSettings()
        auto, language = row
        return ChatSettings(auto=None if auto is None else bool(auto), language=language)

    def set_auto(self, chat_id: int, on: bool | None) -> None:
        """Turn automatic transcription on/off in this chat; ``None`` follows the config again.

        Example::

            state.set_auto(42, False)
            state.chat_settings(42).auto   # False
        """
        self._set_setting(chat_id, "auto", None if on is None else int(bool(on)))

    def set_language(self, chat_id: int, code: str | None) -> None:
        """Pin the chat's language (stored lower-case, e.g. ``"ru"``); ``None`` or ``""`` = detect.

        The code is not checked here: the transcriber knows which codes exist.

        Example::

            state.set_language(42, "RU")
            state.chat_settings(42).language   # 'ru'
        """
        value = code.strip().lower() if code is not None else None
        self._set_setting(chat_id, "language", value or None)

    def _set_setting(self, chat_id: int, column: str, value: Any) -> None:
        assert column in ("auto", "language")  # a fixed name, never from a message
        with self._tx() as conn:
            conn.execute(f"INSERT INTO chat_settings (chat_id, {column}) VALUES (?, ?) "
                         f"ON CONFLICT (chat_id) DO UPDATE SET {column} = excluded.{column}",
                         (chat_id, value))
            # A chat back on all defaults needs no row.
            conn.execute("DELETE FROM chat_settings WHERE chat_id = ? "
                         "AND auto IS NULL AND language IS NULL", (chat_id,))

    # -- transcript cache --------------------------------------------------------------

    def cached(self, document_id: int) -> Cached | None:
        """The stored transcript of this Telegram document, or ``None``.

        Example::

            hit = state.cached(555)
            if hit: print(hit.text, hit.segments[0])   # 'hello there' (0.0, 1.5, 'hello there')
        """
        row = self._one("SELECT text, language, duration, segments FROM transcript_cache "
                        "WHERE document_id = ?", (document_id,))
        if row is None:
            return None
        text, language, duration, segments = row
        return Cached(text=text, language=language, duration=duration,
                      segments=[(float(s), float(e), str(t)) for s, e, t in json.loads(segments)])

    def remember(self, document_id: int, text: str, language: str | None, duration: float,
                 segments: Iterable[Any]) -> None:
        """Cache a transcript. ``segments``: ``(start, end, text)`` tuples or objects with
        ``.start``/``.end``/``.text`` (the transcriber's ``Segment``). Replaces an older entry.

        Example::

            state.remember(555, "hello there", "en", 1.5, [(0.0, 1.5, "hello there")])
        """
        rows = [_segment_tuple(seg) for seg in segments]
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO transcript_cache "
                "(document_id, text, language, duration, segments, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (document_id, text, language, float(duration),
                 json.dumps(rows, ensure_ascii=False), self._clock()))
        logger.debug("cached transcript of document {} ({} segment(s))", document_id, len(rows))

    # -- job journal -------------------------------------------------------------------

    def record_job(self, chat_id: int, message_id: int, document_id: int | None,
                   payload: Mapping[str, Any]) -> JobRecord | None:
        """Journal a job as 'pending' before any work; ``None`` if this message already has one.

        ``payload`` must be JSON-serialisable: whatever is needed to fetch the message
        again after a restart. A message seen twice (live and in backfill) is queued once.

        Example::

            job = state.record_job(42, 7, 555, {"chat_kind": "private"})   # JobRecord(...)
            state.record_job(42, 7, 555, {})                              # None
        """
        payload_json = json.dumps(dict(payload), ensure_ascii=False)  # TypeError before any write
        now = self._clock()
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (chat_id, message_id, document_id, state, payload, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_id, message_id) DO NOTHING",
                (chat_id, message_id, document_id, PENDING, payload_json, now, now))
            if cursor.rowcount == 0:
                return None
            job_id = cursor.lastrowid
        logger.debug("journaled job {} for message {}/{}", job_id, chat_id, message_id)
        return JobRecord(id=job_id, chat_id=chat_id, message_id=message_id,
                         document_id=document_id, state=PENDING, placeholder_id=None,
                         payload=json.loads(payload_json), attempts=0, created_at=now)

    def job(self, job_id: int) -> JobRecord | None:
        """The journal row of ``job_id``, or ``None`` (never recorded, or pruned).

        Example::

            state.job(job.id).state   # 'pending'
        """
        row = self._one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _job_record(row)

    def set_placeholder(self, job_id: int, message_id: int) -> None:
        """Remember the "transcribing…" message, so a resumed job edits it, not sends anew.

        Example::

            state.set_placeholder(job.id, 8)
        """
        self._update_job(job_id, "placeholder_id = ?", (message_id,), final_ok=False)

    def mark_running(self, job_id: int) -> int:
        """Mark the job as started and count the attempt; return the attempt number (1, 2, …).

        Raises :class:`StateError` if the job is unknown or already finished: the caller
        must not do its work again.

        Example::

            state.mark_running(job.id)   # 1
        """
        # No RETURNING clause: it needs SQLite 3.35, older than some distributions ship.
        with self._tx() as conn:
            changed = conn.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (RUNNING, self._clock(), job_id, *_UNFINISHED)).rowcount
            if not changed:
                raise StateError(f"job {job_id} is unknown or already finished")
            return int(conn.execute("SELECT attempts FROM jobs WHERE id = ?",
                                    (job_id,)).fetchone()[0])

    def mark_delivered(self, job_id: int, reply_ids: Sequence[int]) -> bool:
        """Finish the job as 'done', remembering the ids of the messages sent.

        Returns ``False`` (and changes nothing) if the job was already finished, so a
        repeated call cannot overwrite what was recorded.

        Example::

            state.mark_delivered(job.id, [8, 9])   # True
            state.mark_delivered(job.id, [10])     # False; job(job.id).reply_ids == [8, 9]
        """
        return self._finish(job_id, DONE, reply_ids=[int(i) for i in reply_ids])

    def mark_failed(self, job_id: int, reason: str) -> bool:
        """Finish the job as 'failed' for good (never resumed). ``False`` if already finished.

        Example::

            state.mark_failed(job.id, "download failed")   # True
        """
        return self._finish(job_id, FAILED, reason=reason)

    def delivered(self, chat_id: int, message_id: int) -> bool:
        """Whether this message's job finished as 'done'.

        Example::

            state.delivered(42, 7)   # True after mark_delivered
        """
        row = self._one("SELECT 1 FROM jobs WHERE chat_id = ? AND message_id = ? AND state = ?",
                        (chat_id, message_id, DONE))
        return row is not None

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs to resume after a restart ('pending' or 'running'), oldest first.

        Jobs already started :data:`MAX_ATTEMPTS` times are poison (they crash or hang the
        bot each time): they are marked 'failed' with reason 'too many attempts' instead.

        Example::

            for job in state.unfinished_jobs():
                resume(job)   # mark_running again, then edit job.placeholder_id if set
        """
        with self._tx() as conn:
            gave_up = conn.execute("SELECT id FROM jobs WHERE state IN (?, ?) AND attempts >= ?",
                                   (*_UNFINISHED, MAX_ATTEMPTS)).fetchall()
            conn.executemany("UPDATE jobs SET state = ?, reason = 'too many attempts', "
                             "updated_at = ? WHERE id = ?",
                             [(FAILED, self._clock(), job_id) for (job_id,) in gave_up])
            rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN (?, ?) "
                                "ORDER BY id", _UNFINISHED).fetchall()
        if gave_up:
            logger.warning("gave up on {} job(s) after {} attempts: {}", len(gave_up),
                           MAX_ATTEMPTS, sorted(r[0] for r in gave_up))
        return [_job_record(row) for row in rows]

    def prune(self, older_than_days: int = 30) -> int:
        """Delete 'done' and 'failed' jobs finished more than ``older_than_days`` ago; return
        how many. Unfinished jobs are never pruned.

        A pruned message is no longer known as handled: keep the window longer than the
        backfill looks back (backfill starts at :meth:`last_seen`, so it normally does).

        Example::

            state.prune(30)   # 12
        """
        cutoff = self._clock() - older_than_days * 86_400
        with self._tx() as conn:
            count = conn.execute("DELETE FROM jobs WHERE state IN (?, ?) AND updated_at < ?",
                                 (DONE, FAILED, cutoff)).rowcount
        if count:
            logger.info("pruned {} finished job(s) older than {} day(s)", count, older_than_days)
        return count

    def _update_job(self, job_id: int, assignment: str, values: tuple, *, final_ok: bool) -> int:
        where = "" if final_ok else f" AND state IN ('{PENDING}', '{RUNNING}')"
        with self._tx() as conn:
            count = conn.execute(f"UPDATE jobs SET {assignment}, updated_at = ? WHERE id = ?{where}",
                                 (*values, self._clock(), job_id)).rowcount
            if count == 0 and conn.execute("SELECT 1 FROM jobs WHERE id = ?",
                                           (job_id,)).fetchone() is None:
                raise StateError(f"job {job_id} is unknown")
        return count

    def _finish(self, job_id: int, state: str, *, reply_ids: list[int] | None = None,
                reason: str | None = None) -> bool:
        count = self._update_job(job_id, "state = ?, reply_ids = ?, reason = ?",
                                 (state, json.dumps(reply_ids or []), reason), final_ok=False)
        if count:
            logger.debug("job {} is {}", job_id, state)
        return bool(count)

    # -- backfill ----------------------------------------------------------------------

    def last_seen(self, chat_id: int) -> int | None:
        """The highest message id handled in this chat, or ``None``: where backfill resumes.

        Example::

            state.last_seen(42)   # None, then 7 after mark_seen(42, 7)
        """
        row = self._one("SELECT message_id FROM seen WHERE chat_id = ?", (chat_id,))
        return None if row is None else int(row[0])

    def mark_seen(self, chat_id: int, message_id: int) -> None:
        """Record that ``message_id`` was handled; keeps the maximum (messages may finish
        out of order).

        Example::

            state.mark_seen(42, 9); state.mark_seen(42, 7)
            state.last_seen(42)   # 9
        """
        with self._tx() as conn:
            conn.execute("INSERT INTO seen (chat_id, message_id) VALUES (?, ?) "
                         "ON CONFLICT (chat_id) DO UPDATE "
                         "SET message_id = max(message_id, excluded.message_id)",
                         (chat_id, message_id))

    # -- search ------------------------------------------------------------------------

    def index_transcript(self, chat_id: int, message_id: int, text: str, date: float) -> None:
        """Make a delivered transcript searchable (``date``: the voice message's Unix time).
        Indexing the same message again replaces its text.

        Example::

            state.index_transcript(42, 7, "meet me at the station", date=msg_date)
        """
        with self._tx() as conn:
            conn.execute("INSERT INTO transcripts (chat_id, message_id, text, date) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO UPDATE "
                         "SET text = excluded.text, date = excluded.date",
                         (chat_id, message_id, text, float(date)))

    def search(self, query: str, limit: int = 10, chat_id: int | None = None) -> list[Hit]:
        """Transcripts holding every word of ``query`` (the last one as a prefix), newest first.

        ``query`` is a user's text taken literally: quotes, ``*``, ``OR``, ``NEAR(`` and
        the like are plain words, never FTS syntax, so no query can raise or inject.
        Newest first rather than by rank: every hit holds all the words, and people look
        for "what was said about X lately"; it also orders the same without FTS5.

        Example::

            state.search("station", chat_id=42)
            # [Hit(chat_id=42, message_id=7, snippet='meet me at the «station»', date=...)]
        """
        words = _query_words(query)
        limit = max(0, int(limit))
        if not words or not limit:
            return []
        chat_filter = "" if chat_id is None else " AND t.chat_id = ?"
        chat_args: tuple = () if chat_id is None else (chat_id,)
        if self.fts:
            rows = self._all(
                "SELECT t.chat_id, t.message_id, "
                f"snippet(transcripts_fts, 0, ?, ?, ?, {_SNIPPET_TOKENS}), t.date "
                "FROM transcripts_fts JOIN transcripts AS t ON t.id = transcripts_fts.rowid "
                f"WHERE transcripts_fts MATCH ?{chat_filter} "
                "ORDER BY t.date DESC, t.id DESC LIMIT ?",
                (_MARK_OPEN, _MARK_CLOSE, _ELLIPSIS, _fts_query(words), *chat_args, limit))
            return [Hit(chat_id=c, message_id=m, snippet=s, date=d) for c, m, s, d in rows]
        # Fallback without FTS5: a case-insensitive substring test per word (a Python
        # function, because SQLite's LIKE folds ASCII only and would miss "Привет").
        conditions = " AND ".join("_vb_contains(t.text, ?)" for _ in words)
        rows = self._all(f"SELECT t.chat_id, t.message_id, t.text, t.date FROM transcripts AS t "
                         f"WHERE {conditions}{chat_filter} ORDER BY t.date DESC, t.id DESC LIMIT ?",
                         (*words, *chat_args, limit))
        return [Hit(chat_id=c, message_id=m, snippet=_plain_snippet(text, words), date=d)
                for c, m, text, d in rows]

    # -- stats -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Totals for the status command: jobs by state, cached and indexed transcripts.

        Example::

            state.counts()
            # {'pending': 0, 'running': 1, 'done': 40, 'failed': 2, 'cached': 38, 'indexed': 40}
        """
        with self._tx(write=False) as conn:
            result = {name: 0 for name in (PENDING, RUNNING, DONE, FAILED)}
            for job_state, n in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
                result[job_state] = n
            result["cached"] = conn.execute("SELECT count(*) FROM transcript_cache").fetchone()[0]
            result["indexed"] = conn.execute("SELECT count(*) FROM transcripts").fetchone()[0]
        return result

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; any sqlite3 error becomes :class:`StateError`."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StateError(f"{self.path} is closed")
            try:
                # IMMEDIATE takes the write lock up front, so a second process makes us
                # wait busy_timeout instead of failing at the first write (WAL's rule).
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: {exc}") from exc

    def _one(self, sql: str, args: tuple) -> tuple | None:
        with self._tx(write=False) as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple) -> list[tuple]:
        with self._tx(write=False) as conn:
            return conn.execute(sql, args).fetchall()

    def _configure(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer, and a commit appends to the log instead
            # of rewriting pages twice. synchronous=NORMAL: in WAL mode a commit no longer
            # waits for fsync; a power cut may lose the last commits but never corrupts the
            # file, and a lost journal row only means a message is transcribed once more.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a usable SQLite database: {exc}") from exc
        if str(mode).lower() != "wal":
            logger.warning("{}: journal mode is {}, not WAL", self.path, mode)
        conn.create_function("_vb_contains", 2, _contains, deterministic=True)

    def _migrate(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(f"{self.path} has schema version {version}, newer than this "
                                 f"voicebot knows ({len(MIGRATIONS)}): upgrade voicebot")
            for number in range(version + 1, len(MIGRATIONS) + 1):
                # One transaction per step: a crash mid-migration leaves the old version.
                try:
                    conn.executescript(f"BEGIN; {MIGRATIONS[number - 1]}; "
                                       f"PRAGMA user_version = {number}; COMMIT;")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                logger.info("{}: schema migrated to version {}", self.path, number)
        except sqlite3.Error as exc:
            raise StateError(f"cannot migrate {self.path}: {exc}") from exc

    def _setup_search(self) -> None:
        global _warned_no_fts
        conn = self._conn
        assert conn is not None
        try:
            if not _has_fts5(conn):
                # Triggers left by an FTS5 build would fail every insert here; drop them
                # (they and a full rebuild come back when FTS5 is available again).
                conn.executescript("".join(f"DROP TRIGGER IF EXISTS {name};"
                                           for name in _FTS_TRIGGERS))
                if not _warned_no_fts:
                    _warned_no_fts = True
                    logger.warning("this sqlite3 has no FTS5: transcript search falls back "
                                   "to a slower substring scan")
                return
            present = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            conn.executescript(f"BEGIN; {_FTS_SETUP}; COMMIT;")
            if not set(_FTS_TRIGGERS) <= present:
                # New index, or rows were added while it was not kept up to date.
                conn.execute("INSERT INTO transcripts_fts (transcripts_fts) VALUES ('rebuild')")
            self.fts = True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StateError(f"cannot set up search in {self.path}: {exc}") from exc


_JOB_COLUMNS = ("id, chat_id, message_id, document_id, state, placeholder_id, payload, "
                "attempts, created_at, reply_ids, reason")


def _job_record(row: tuple) -> JobRecord:
    (job_id, chat_id, message_id, document_id, state, placeholder_id, payload, attempts,
     created_at, reply_ids, reason) = row
    return JobRecord(id=job_id, chat_id=chat_id, message_id=message_id, document_id=document_id,
                     state=state, placeholder_id=placeholder_id, payload=json.loads(payload),
                     attempts=attempts, created_at=created_at,
                     reply_ids=list(json.loads(reply_ids)), reason=reason)


def _segment_tuple(seg: Any) -> tuple[float, float, str]:
    if hasattr(seg, "start") and hasattr(seg, "end") and hasattr(seg, "text"):
        return float(seg.start), float(seg.end), str(seg.text)
    start, end, text = seg
    return float(start), float(end), str(text)


def _query_words(query: str) -> list[str]:
    """The user's words, without the punctuation around them (``"noon"*`` → ``noon``);
    tokens with no letter or digit (``"``, ``*``, ``-``, ``)``) are dropped. The FTS5
    tokenizer would ignore that punctuation anyway; the fallback's substring test would not."""
    words = []
    for token in (query or "").split():
        chars = [c for c in token if c.isprintable()]
        while chars and not chars[0].isalnum():
            chars.pop(0)
        while chars and not chars[-1].isalnum():
            chars.pop()
        if chars:
            words.append("".join(chars))
    return words[:32]  # a pasted essay is not a search; keeps the MATCH expression small


def _fts_query(words: list[str]) -> str:
    """An FTS5 expression that treats every word as a literal string: ``"a" AND "b"*``."""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"  # the last word may be unfinished
    return " AND ".join(quoted)


def _contains(text: str | None, needle: str | None) -> bool:
    if text is None or needle is None:
        return False
    return needle.casefold() in text.casefold()


def _plain_snippet(text: str, words: list[str], width: int = 60) -> str:
    """A window of ``text`` around the first word's match, marked like FTS5's snippet()."""
    folded = text.casefold()
    # casefold() can change lengths (ß → ss); fall back to no marking if it did.
    at = folded.find(words[0].casefold()) if len(folded) == len(text) else -1
    if at < 0:
        return text[:width * 2] + (_ELLIPSIS if len(text) > width * 2 else "")
    end = at + len(words[0])
    start = max(0, at - width)
    stop = min(len(text), end + width)
    return ((_ELLIPSIS if start else "") + text[start:at] + _MARK_OPEN + text[at:end]
            + _MARK_CLOSE + text[end:stop] + (_ELLIPSIS if stop < len(text) else ""))
