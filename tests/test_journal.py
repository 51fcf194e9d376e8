import pytest

from voicebot.state import State
from voicebot.state.db import StateError
from voicebot.state.journal import MAX_ATTEMPTS

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state.db"


@pytest.fixture
def journal(db):
    with State(db) as s:
        yield s.journal


def test_record_is_idempotent(journal):
    job = journal.record(42, 7, 555, {"target": "reply", "flags": [1, 2]})
    assert job is not None
    assert (job.chat_id, job.message_id, job.document_id) == (42, 7, 555)
    assert job.state == "pending" and job.attempts == 0 and job.sent == {}
    assert job.payload == {"target": "reply", "flags": [1, 2]}
    assert journal.record(42, 7, 555, {"other": True}) is None
    assert journal.get(job.id).payload == {"target": "reply", "flags": [1, 2]}
    other = journal.record(42, 8, None, {})  # same chat, other message
    assert other is not None and other.id > job.id and other.document_id is None
    assert journal.record(43, 7, 555, {}) is not None  # same message id, other chat
    with pytest.raises(TypeError):
        journal.record(1, 1, 1, {"x": object()})
    assert journal.counts()["pending"] == 3


def test_lifecycle_records_every_message_with_its_chat(journal):
    job = journal.record(42, 7, 555, {})
    journal.sent(job.id, "1", chat_id=999, message_id=8)  # a placeholder in Saved Messages
    assert journal.start(job.id) == 1
    journal.sent(job.id, "2", chat_id=999, message_id=9)
    record = journal.find(42, 7)
    assert record.state == "running" and record.sent == {"1": (999, 8), "2": (999, 9)}
    journal.unsent(job.id, "2")
    assert journal.get(job.id).sent == {"1": (999, 8)}
    assert journal.done(job.id) is True
    assert journal.get(job.id).state == "done" and journal.handled(42, 7)
    assert not journal.handled(42, 8) and not journal.handled(43, 7)
    # Finished is final.
    assert journal.done(job.id) is False
    assert journal.fail(job.id, "late error") is False
    with pytest.raises(StateError):
        journal.start(job.id)


def test_failed_job_is_final_and_still_handled(journal):
    job = journal.record(1, 2, None, {})
    assert journal.fail(job.id, "download failed") is True
    failed = journal.get(job.id)
    assert failed.state == "failed" and failed.reason == "download failed"
    assert journal.handled(1, 2)  # backfill must not answer it again
    assert journal.unfinished() == []


def test_unknown_job_ids_raise(journal):
    assert journal.get(12345) is None and journal.find(1, 1) is None
    for call in (
        lambda: journal.start(12345),
        lambda: journal.done(12345),
        lambda: journal.fail(12345, "x"),
        lambda: journal.defer(12345, 0),
        lambda: journal.set_payload(12345, {}),
    ):
        with pytest.raises(StateError):
            call()


def test_unfinished_jobs_survive_restart_oldest_first(db):
    clock = Clock()
    with State(db, clock=clock) as s:
        j = s.journal
        a = j.record(1, 10, 100, {"n": "a"})
        clock.now += 1
        b = j.record(2, 20, 200, {"n": "b"})
        clock.now += 1
        c = j.record(1, 11, 101, {"n": "c"})
        clock.now += 1
        d = j.record(3, 30, 300, {"n": "d"})
        j.start(b.id)
        j.sent(b.id, "1", 2, 21)
        j.start(c.id)
        j.done(c.id)
        j.fail(d.id, "refused")
    # "crash" here: b was running, a pending
    with State(db, clock=clock) as s:
        resumed = s.journal.unfinished()
        assert [r.id for r in resumed] == [a.id, b.id]
        ra, rb = resumed
        assert ra.state == "pending" and ra.payload == {"n": "a"} and ra.created_at == clock.now - 3
        assert rb.state == "running" and rb.sent == {"1": (2, 21)} and rb.attempts == 1


def test_poison_job_gives_up_after_max_attempts_and_is_reported_once(db):
    with State(db) as s:
        job = s.journal.record(1, 1, 1, {})
        healthy = s.journal.record(1, 2, 2, {})
        s.journal.start(healthy.id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert [r.id for r in s.journal.unfinished()] == [job.id, healthy.id]
            assert s.journal.start(job.id) == attempt  # ...and the bot crashes each time
    with State(db) as s:
        first = s.journal.unfinished()
        assert [(r.id, r.state) for r in first] == [(job.id, "failed"), (healthy.id, "running")]
        assert first[0].reason == "too many attempts" and first[0].attempts == MAX_ATTEMPTS
        assert [r.id for r in s.journal.unfinished()] == [healthy.id]  # reported once
        assert s.counts()["failed"] == 1


def test_a_deferred_job_waits_and_its_attempt_does_not_count(db):
    clock = Clock()
    with State(db, clock=clock) as s:
        job = s.journal.record(1, 1, 1, {})
        for _ in range(MAX_ATTEMPTS + 2):  # flood waits, not crashes: never poison
            s.journal.start(job.id)
            s.journal.defer(job.id, clock.now + 600)
        record = s.journal.get(job.id)
        assert record.state == "pending" and record.not_before == clock.now + 600
        assert record.retries == MAX_ATTEMPTS + 2 and record.attempts == 0
        assert [r.id for r in s.journal.unfinished()] == [job.id]
        s.journal.start(job.id)
        assert s.journal.get(job.id).not_before == 0


def test_prune_deletes_only_old_finished_jobs_and_their_messages(db):
    clock = Clock()
    with State(db, clock=clock) as s:
        j = s.journal
        old_done = j.record(1, 1, None, {})
        old_failed = j.record(1, 2, None, {})
        old_pending = j.record(1, 3, None, {})
        j.sent(old_done.id, "1", 1, 100)
        j.done(old_done.id)
        j.fail(old_failed.id, "x")
        clock.now += 29 * DAY
        recent = j.record(1, 4, None, {})
        j.done(recent.id)
        clock.now += 2 * DAY  # old ones finished 31 days ago, recent 2 days ago
        assert j.prune() == 2
        assert j.get(old_done.id) is None and j.get(old_failed.id) is None
        assert s.db.one("SELECT count(*) FROM sent", ())[0] == 0  # cascaded
        assert j.get(old_pending.id).state == "pending" and j.handled(1, 4)
        assert j.prune(older_than_days=1) == 1
        assert j.prune() == 0
        assert j.record(9, 9, None, {}).id > recent.id  # ids are not reused after pruning
