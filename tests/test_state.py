import os
import sqlite3
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from voicebot import state as state_mod
from voicebot.errors import VoicebotError
from voicebot.state import (
    DB_NAME,
    MAX_ATTEMPTS,
    MIGRATIONS,
    Cached,
    ChatSettings,
    State,
    StateError,
)

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "data" / DB_NAME


@pytest.fixture
def st(db):
    with State(db) as s:
        yield s


@pytest.fixture
def no_fts(monkeypatch):
    monkeypatch.setattr(state_mod, "_has_fts5", lambda conn: False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- opening -----------------------------------------------------------------------------

def test_file_is_private_wal_and_versioned(db):
    old = os.umask(0o022)
    try:
        with State.in_dir(db.parent) as s:
            s.set_auto(1, True)  # a write, so the -wal file exists
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
        s.set_language(5, "de")
    with State(db) as s:  # a second CREATE TABLE would raise
        assert s.chat_settings(5).language == "de"


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
        s.chat_settings(1)


def test_sqlite_errors_become_state_errors(st):
    st._conn.execute("DROP TABLE seen")  # simulate a damaged schema
    with pytest.raises(StateError):
        st.mark_seen(1, 1)
    st.set_auto(1, True)  # the failed transaction was rolled back; the lock was released


# -- settings ----------------------------------------------------------------------------

def test_settings_default_round_trip_and_survive_reopen(db):
    with State(db) as s:
        assert s.chat_settings(42) == ChatSettings(auto=None, language=None)
        s.set_auto(42, False)
        s.set_language(42, " RU ")
        s.set_auto(-100123, True)
        assert s.chat_settings(42) == ChatSettings(auto=False, language="ru")
    with State(db) as s:
        assert s.chat_settings(42) == ChatSettings(auto=False, language="ru")
        assert s.chat_settings(-100123) == ChatSettings(auto=True, language=None)
        assert s.chat_settings(7) == ChatSettings()
        s.set_auto(42, None)
        s.set_language(42, "")
        assert s.chat_settings(42) == ChatSettings()
        s.set_language(-100123, "en")
        s.set_language(-100123, None)
        assert s.chat_settings(-100123) == ChatSettings(auto=True, language=None)
        assert s._conn.execute("SELECT count(*) FROM chat_settings").fetchone()[0] == 1


# -- cache -------------------------------------------------------------------------------

@dataclass
class Seg:  # shaped like voicebot.transcriber.Segment
    start: float
    end: float
    text: str
    no_speech_prob: float = 0.0


def test_cache_round_trip_with_segments(db):
    with State(db) as s:
        assert s.cached(555) is None
        s.remember(555, "Привет. Hello \"there\"", "ru", 3.25,
                   [(0, 1.5, "Привет."), (1.5, 3.25, 'Hello "there"')])
        s.remember(556, "x", None, 1, [Seg(0.0, 1.0, "x")])
    with State(db) as s:
        hit = s.cached(555)
        assert hit == Cached(text="Привет. Hello \"there\"", language="ru", duration=3.25,
                             segments=[(0.0, 1.5, "Привет."), (1.5, 3.25, 'Hello "there"')])
        assert all(isinstance(seg, tuple) for seg in hit.segments)
        assert s.cached(556) == Cached("x", None, 1.0, [(0.0, 1.0, "x")])
        s.remember(555, "new", "en", 1.0, [])
        assert s.cached(555) == Cached("new", "en", 1.0, [])
        assert s.cached(999) is None


# -- jobs --------------------------------------------------------------------------------

def test_record_job_is_idempotent(st):
    job = st.record_job(42, 7, 555, {"chat_kind": "private", "flags": [1, 2]})
    assert job is not None
    assert (job.chat_id, job.message_id, job.document_id) == (42, 7, 555)
    assert job.state == "pending" and job.attempts == 0 and job.placeholder_id is None
    assert job.payload == {"chat_kind": "private", "flags": [1, 2]}
    assert st.record_job(42, 7, 555, {"other": True}) is None
    assert st.job(job.id).payload == {"chat_kind": "private", "flags": [1, 2]}
    other = st.record_job(42, 8, None, {})  # same chat, other message
    assert other is not None and other.id > job.id and other.document_id is None
    assert st.record_job(43, 7, 555, {}) is not None  # same message id, other chat
    with pytest.raises(TypeError):
        st.record_job(1, 1, 1, {"x": object()})
    assert st.counts()["pending"] == 3


def test_job_lifecycle_and_delivery(st):
    job = st.record_job(42, 7, 555, {})
    st.set_placeholder(job.id, 8)
    assert st.job(job.id).placeholder_id == 8
    assert st.mark_running(job.id) == 1
    assert st.job(job.id).state == "running"
    assert not st.delivered(42, 7)
    assert st.mark_delivered(job.id, [8, 9]) is True
    done = st.job(job.id)
    assert done.state == "done" and done.reply_ids == [8, 9] and done.attempts == 1
    assert st.delivered(42, 7)
    assert not st.delivered(42, 8) and not st.delivered(43, 7)
    # Finished is final: nothing overwrites what was delivered.
    assert st.mark_delivered(job.id, [10]) is False
    assert st.mark_failed(job.id, "late error") is False
    st.set_placeholder(job.id, 99)
    assert st.job(job.id).reply_ids == [8, 9] and st.job(job.id).placeholder_id == 8
    with pytest.raises(StateError):
        st.mark_running(job.id)


def test_failed_job_is_final_and_not_delivered(st):
    job = st.record_job(1, 2, None, {})
    assert st.mark_failed(job.id, "download failed") is True
    failed = st.job(job.id)
    assert failed.state == "failed" and failed.reason == "download failed"
    assert not st.delivered(1, 2)
    assert st.mark_delivered(job.id, [3]) is False
    assert st.unfinished_jobs() == []


def test_unknown_job_ids_raise(st):
    assert st.job(12345) is None
    for call in (lambda: st.mark_running(12345), lambda: st.mark_delivered(12345, []),
                 lambda: st.mark_failed(12345, "x"), lambda: st.set_placeholder(12345, 1)):
        with pytest.raises(StateError):
            call()


def test_unfinished_jobs_survive_restart_oldest_first(db):
    clock = Clock()
    with State(db, clock=clock) as s:
        a = s.record_job(1, 10, 100, {"n": "a"})
        clock.now += 1
        b = s.record_job(2, 20, 200, {"n": "b"})
        clock.now += 1
        c = s.record_job(1, 11, 101, {"n": "c"})
        clock.now += 1
        d = s.record_job(3, 30, 300, {"n": "d"})
        s.mark_running(b.id)
        s.set_placeholder(b.id, 21)
        s.mark_running(c.id)
        s.mark_delivered(c.id, [12])
        s.mark_failed(d.id, "refused")
    # "crash" here: b was running, a pending
    with State(db, clock=clock) as s:
        resumed = s.unfinished_jobs()
        assert [j.id for j in resumed] == [a.id, b.id]
        ra, rb = resumed
        assert ra.state == "pending" and ra.payload == {"n": "a"} and ra.created_at == clock.now - 3
        assert rb.state == "running" and rb.placeholder_id == 21 and rb.attempts == 1
        assert s.delivered(1, 11) and not s.delivered(1, 10)


def test_poison_job_gives_up_after_max_attempts(db):
    with State(db) as s:
        job = s.record_job(1, 1, 1, {})
        healthy = s.record_job(1, 2, 2, {})
        s.mark_running(healthy.id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert [j.id for j in s.unfinished_jobs()] == [job.id, healthy.id]
            assert s.mark_running(job.id) == attempt  # ...and the bot crashes each time
    with State(db) as s:
        assert [j.id for j in s.unfinished_jobs()] == [healthy.id]
        poisoned = s.job(job.id)
        assert poisoned.state == "failed" and poisoned.reason == "too many attempts"
        assert poisoned.attempts == MAX_ATTEMPTS
        assert s.counts()["failed"] == 1


def test_prune_deletes_only_old_finished_jobs(db):
    clock = Clock()
    with State(db, clock=clock) as s:
        old_done = s.record_job(1, 1, None, {})
        old_failed = s.record_job(1, 2, None, {})
        old_pending = s.record_job(1, 3, None, {})
        s.mark_delivered(old_done.id, [])
        s.mark_failed(old_failed.id, "x")
        clock.now += 29 * DAY
        recent = s.record_job(1, 4, None, {})
        s.mark_delivered(recent.id, [5])
        clock.now += 2 * DAY  # old ones finished 31 days ago, recent 2 days ago
        assert s.prune() == 2
        assert s.job(old_done.id) is None and s.job(old_failed.id) is None
        assert s.job(old_pending.id).state == "pending" and s.delivered(1, 4)
        assert s.prune(older_than_days=1) == 1
        assert s.prune() == 0
        # ids are not reused after pruning
        assert s.record_job(9, 9, None, {}).id > recent.id


# -- backfill ----------------------------------------------------------------------------

def test_mark_seen_keeps_the_max(db):
    with State(db) as s:
        assert s.last_seen(42) is None
        s.mark_seen(42, 9)
        s.mark_seen(42, 7)
        s.mark_seen(43, 1)
        assert s.last_seen(42) == 9
        s.mark_seen(42, 12)
    with State(db) as s:
        assert s.last_seen(42) == 12 and s.last_seen(43) == 1 and s.last_seen(44) is None


# -- search ------------------------------------------------------------------------------

HOSTILE = ['"', '""', '*', 'OR', 'a OR b', 'NEAR(', 'NEAR(a b)', '-', ')', '(', '^', ':',
           'text:meet', '"unbalanced', 'AND', 'NOT meet', '+', "'; DROP TABLE jobs; --",
           'meet*', '*meet', '\x00', 'meet\x00station', '{text}: meet', 'привет"', '«»', '  ']


def _fill(s: State) -> None:
    s.index_transcript(1, 10, "Meet me at the station at noon", date=1000)
    s.index_transcript(1, 11, "The train station is closed today", date=3000)
    s.index_transcript(2, 20, "Привет, встретимся на вокзале", date=2000)
    s.index_transcript(2, 21, "We need more station coffee", date=4000)


@pytest.fixture(params=["fts5", "fallback"])
def searchable(request, db, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr(state_mod, "_has_fts5", lambda conn: False)
    with State(db) as s:
        assert s.fts is (request.param == "fts5")
        _fill(s)
        yield s


def test_search_finds_words_newest_first(searchable):
    s = searchable
    hits = s.search("station")
    assert [(h.chat_id, h.message_id) for h in hits] == [(2, 21), (1, 11), (1, 10)]
    assert [h.date for h in hits] == [4000, 3000, 1000]
    assert all("«station»" in h.snippet.lower() for h in hits)
    assert [h.message_id for h in s.search("STATION noon")] == [10]  # AND, case-insensitive
    assert s.search("station giraffe") == []
    assert [h.message_id for h in s.search("station", limit=2)] == [21, 11]
    assert s.search("station", limit=0) == []


def test_search_filters_by_chat(searchable):
    assert [h.message_id for h in searchable.search("station", chat_id=1)] == [11, 10]
    assert [h.message_id for h in searchable.search("station", chat_id=2)] == [21]
    assert searchable.search("station", chat_id=3) == []


def test_search_cyrillic_and_prefix(searchable):
    hits = searchable.search("привет")
    assert [(h.chat_id, h.message_id) for h in hits] == [(2, 20)]
    assert "«Привет»" in hits[0].snippet
    assert [h.message_id for h in searchable.search("ВОКЗАЛ")] == [20]  # prefix of "вокзале"
    assert [h.message_id for h in searchable.search("coff")] == [21]


def test_search_hostile_queries_never_raise(searchable):
    for query in HOSTILE:
        hits = searchable.search(query)
        assert isinstance(hits, list), query
    assert searchable.search("") == [] and searchable.search("   ") == []
    assert searchable.search('"*-)(') == []
    # operators are plain words: "OR" must not widen the search to either side
    assert searchable.search("noon OR coffee") == []
    # quotes and stars around a real word still find it, and nothing was dropped
    assert [h.message_id for h in searchable.search('"noon"*')] == [10]
    assert [h.message_id for h in searchable.search('NEAR(noon')] == []
    assert searchable.counts()["indexed"] == 4


def test_reindex_replaces_text(searchable):
    searchable.index_transcript(1, 10, "completely different words", date=1000)
    assert [h.message_id for h in searchable.search("noon")] == []
    assert [h.message_id for h in searchable.search("different")] == [10]
    assert searchable.counts()["indexed"] == 4


def test_index_built_when_fts5_becomes_available(db, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(state_mod, "_has_fts5", lambda conn: False)
        with State(db) as s:
            _fill(s)
            assert not s.fts
    with State(db) as s:  # now with FTS5: rows written meanwhile are indexed
        assert s.fts
        assert [h.message_id for h in s.search("station", chat_id=1)] == [11, 10]


def test_fallback_is_logged_once(db, no_fts, monkeypatch):
    from loguru import logger

    monkeypatch.setattr(state_mod, "_warned_no_fts", False)
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        State(db).close()
        State(db).close()
    finally:
        logger.remove(sink)
    assert sum("FTS5" in m for m in messages) == 1


def test_transcript_text_is_not_logged_above_debug(db):
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="INFO")
    try:
        with State(db) as s:
            job = s.record_job(1, 1, 1, {})
            s.remember(1, "secret words", "en", 1.0, [(0, 1, "secret words")])
            s.index_transcript(1, 1, "secret words", date=1)
            s.mark_delivered(job.id, [2])
            s.search("secret")
    finally:
        logger.remove(sink)
    assert not any("secret" in m for m in messages)


# -- stats -------------------------------------------------------------------------------

def test_counts(st):
    assert st.counts() == {"pending": 0, "running": 0, "done": 0, "failed": 0,
                           "cached": 0, "indexed": 0}
    a = st.record_job(1, 1, 1, {})
    b = st.record_job(1, 2, 2, {})
    c = st.record_job(1, 3, 3, {})
    st.record_job(1, 4, 4, {})
    st.mark_running(a.id)
    st.mark_delivered(b.id, [9])
    st.mark_failed(c.id, "x")
    st.remember(1, "t", "en", 1.0, [])
    st.index_transcript(1, 2, "t", date=1)
    assert st.counts() == {"pending": 1, "running": 1, "done": 1, "failed": 1,
                           "cached": 1, "indexed": 1}


# -- threads -----------------------------------------------------------------------------

def test_concurrent_use_from_threads_loses_nothing(db):
    per_thread, threads = 50, 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    with State(db) as s:
        def work(t: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    job = s.record_job(t, i, t * 1000 + i, {"t": t})
                    assert job is not None
                    s.mark_running(job.id)
                    s.mark_seen(t, i)
                    if i % 2:
                        s.mark_delivered(job.id, [i])
                    s.index_transcript(t, i, f"thread{t} word{i}", date=i)
                    # every thread also races for one shared message: only one may win
                    s.record_job(-1, i, None, {"t": t})
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
    with State(db) as s:
        counts = s.counts()
        assert counts["done"] == threads * per_thread // 2
        assert counts["running"] == threads * per_thread // 2
        assert counts["pending"] == per_thread  # the shared (-1, i) jobs, once each
        assert counts["indexed"] == threads * per_thread
        assert all(s.last_seen(t) == per_thread - 1 for t in range(threads))
        assert len(s.unfinished_jobs()) == threads * per_thread // 2 + per_thread
        assert [h.chat_id for h in s.search("thread2 word7")] == [2]
