import os
import sqlite3
import stat
from pathlib import Path

import pytest

from voicebot.errors import VoicebotError
from voicebot.state import State
from voicebot.state.db import DB_NAME, MIGRATIONS, StateError


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "data" / DB_NAME


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_is_private_wal_and_versioned(db):
    old = os.umask(0o022)
    try:
        with State.in_dir(db.parent) as s:
            s.chats.set_auto(1, True)  # a write, so the -wal file exists
            assert s.path == db
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{db}{suffix}")
                if path.exists():
                    assert mode(path) == 0o600, suffix
    finally:
        os.umask(old)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        conn.close()


def test_existing_loose_file_is_tightened(db):
    db.parent.mkdir(parents=True)
    State(db).close()
    os.chmod(db, 0o644)
    State(db).close()
    assert mode(db) == 0o600


def test_reopen_does_not_rerun_migrations(db):
    with State(db) as s:
        s.chats.set_language(5, "de")
    with State(db) as s:  # a second CREATE TABLE would raise
        assert s.chats.get(5).language == "de"


def test_version_1_file_is_migrated_and_keeps_its_running_jobs(db):
    """A database written by the previous release: its placeholders become 'sent' rows."""
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    conn.execute(
        "INSERT INTO jobs (chat_id, message_id, document_id, state, placeholder_id, payload, "
        "created_at, updated_at) VALUES (42, 7, 555, 'running', 8, '{}', 1, 1)"
    )
    conn.execute(
        "INSERT INTO jobs (chat_id, message_id, document_id, state, placeholder_id, payload, "
        "created_at, updated_at) VALUES (42, 9, 556, 'done', 10, '{}', 1, 1)"
    )
    conn.commit()
    conn.close()
    with State(db) as s:
        (job,) = s.journal.unfinished()
        assert (job.message_id, job.sent) == (7, {"1": (42, 8)})
        assert s.journal.handled(42, 9)


def test_a_database_that_held_jobs_was_watching_before_the_mark_existed(db):
    """Version 4 adds the watch mark; a bot that already answered voices keeps looking back
    BACKFILL_HOURS (mark 0), a new one starts watching at its first start."""
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript(f"BEGIN; {';'.join(MIGRATIONS[:3])}; PRAGMA user_version = 3; COMMIT;")
    conn.execute(
        "INSERT INTO jobs (chat_id, message_id, state, payload, created_at, updated_at) "
        "VALUES (42, 7, 'done', '{}', 1, 1)"
    )
    conn.commit()
    conn.close()
    with State(db) as s:
        assert s.marks.get("watching_since") == 0
        assert s.marks.keep("watching_since", 1000.0) == 0  # never moved once set
    with State(db.parent / "new.db") as s:
        assert s.marks.get("watching_since") is None
        assert s.marks.keep("watching_since", 1000.0) == 1000.0
        assert s.marks.keep("watching_since", 2000.0) == 1000.0


def test_not_a_database_raises_state_error(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError) as info:
        State(db)
    assert isinstance(info.value, VoicebotError)


def test_newer_schema_is_refused(db):
    State(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer"):
        State(db)


def test_closed_state_raises_and_close_is_idempotent(db):
    s = State(db)
    s.close()
    s.close()
    with pytest.raises(StateError, match="closed"):
        s.chats.get(1)


def test_sqlite_errors_become_state_errors(db):
    with State(db) as s:
        with s.db.tx() as conn:
            conn.execute("DROP TABLE chat_settings")  # simulate a damaged schema
        with pytest.raises(StateError):
            s.chats.set_auto(1, True)
        s.journal.record(1, 1, None, {})  # the failed transaction was rolled back; the lock released
