"""The bot's one SQLite file, ``DATA_DIR/voicebot.db`` (mode 0600): connection, schema, transactions.

The tables belong to the modules that use them (:mod:`.journal`, :mod:`.cache`,
:mod:`.chat_settings`, :mod:`.search`); this module only opens the file, migrates the
schema and runs each statement under one lock. SQLite is embedded (stdlib
:mod:`sqlite3`), so the bot needs no database server.

Every method is safe to call from the asyncio thread and from worker threads: one
connection, one lock, one statement (or one short transaction) at a time. Each call is a
few milliseconds on local disk.

Example::

    db = Database(Path("data/voicebot.db"))
    with db.tx() as conn:
        conn.execute("SELECT 1")
    db.close()

Every failure of the database (unreadable file, disk full, a file written by a newer
voicebot) is raised as :class:`StateError`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from loguru import logger

from voicebot.errors import VoicebotError

DB_NAME = "voicebot.db"
_BUSY_TIMEOUT_MS = 5_000  # another process (``voicebot doctor``) may hold a write lock briefly


class StateError(VoicebotError):
    """The state database cannot be opened or used (corrupt, newer schema, disk full, closed)."""


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
    -- depends on the sqlite3 build, not on the schema version (see search.py).
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
    # 2: every message the bot creates, with its chat (a message id alone names nothing:
    # ids are per chat); retries that wait; the journal, not a high-water mark, says
    # what was handled.
    """
    CREATE TABLE sent (
        job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        slot       TEXT NOT NULL,    -- '1', '2'…: text parts (the placeholder becomes '1'); 'txt'
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (job_id, slot)
    );
    INSERT INTO sent (job_id, slot, chat_id, message_id)
        SELECT id, '1', chat_id, placeholder_id FROM jobs
        WHERE placeholder_id IS NOT NULL AND state IN ('pending', 'running');
    ALTER TABLE jobs ADD COLUMN not_before REAL NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    DROP TABLE seen;
    """,
    # 3: per-chat recognition hints: a language set (.lang ru,en) and a vocabulary (.vocab).
    # Old rows read as "no set, no terms" (NULL).
    """
    ALTER TABLE chat_settings ADD COLUMN languages TEXT;   -- NULL = none; 'ru,en' = detect within these
    ALTER TABLE chat_settings ADD COLUMN vocabulary TEXT;  -- NULL = none; JSON ["term", ...]
    """,
    # 4: named moments (marks.py), first of all since when the bot watches this account. A
    # database that already holds jobs was watching before: 0, so backfill looks back as far
    # as BACKFILL_HOURS, as it did.
    """
    CREATE TABLE marks (
        name  TEXT PRIMARY KEY,
        value REAL NOT NULL
    );
    INSERT INTO marks (name, value) SELECT 'watching_since', 0 FROM jobs LIMIT 1;
    """,
]


class Database:
    """The open file. Thread-safe; use as a context manager or call :meth:`close`.

    ``clock`` returns the current Unix time; tests pass a fake one to age rows.

    Example::

        with Database(Path("data/voicebot.db")) as db:
            db.one("SELECT count(*) FROM jobs", ())   # (0,)
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
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
                self.path, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {self.path}: {exc}") from exc
        try:
            self._configure()
            self._migrate()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{extra}", 0o600)

    def close(self) -> None:
        """Close the file. Idempotent; any later call raises :class:`StateError`."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")  # cheap; keeps the query planner's stats fresh
            conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; any sqlite3 error becomes :class:`StateError`.

        Example::

            with db.tx() as conn:
                conn.execute("DELETE FROM sent WHERE job_id = ?", (7,))
        """
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

    def one(self, sql: str, args: tuple) -> tuple | None:
        with self.tx(write=False) as conn:
            return conn.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple) -> list[tuple]:
        with self.tx(write=False) as conn:
            return conn.execute(sql, args).fetchall()

    def setup(self, step: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``step`` on the raw connection (no transaction of ours) under the lock:
        for schema work that depends on the sqlite3 build, like the FTS5 index."""
        with self._lock:
            if self._conn is None:
                raise StateError(f"{self.path} is closed")
            step(self._conn)

    def _configure(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
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

    def _migrate(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(
                    f"{self.path} has schema version {version}, newer than this "
                    f"voicebot knows ({len(MIGRATIONS)}): upgrade voicebot"
                )
            for number in range(version + 1, len(MIGRATIONS) + 1):
                # One transaction per step: a crash mid-migration leaves the old version.
                try:
                    conn.executescript(f"BEGIN; {MIGRATIONS[number - 1]}; PRAGMA user_version = {number}; COMMIT;")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                logger.info("{}: schema migrated to version {}", self.path, number)
        except sqlite3.Error as exc:
            raise StateError(f"cannot migrate {self.path}: {exc}") from exc
