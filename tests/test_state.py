import threading

import pytest

from voicebot.state import State


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "voicebot.db"


@pytest.fixture
def st(db):
    with State(db) as s:
        yield s


def test_transcript_text_is_not_logged_above_debug(db):
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="INFO")
    try:
        with State(db) as s:
            job = s.journal.record(1, 1, 1, {})
            s.cache.remember(1, "secret words", "en", 1.0, [(0, 1, "secret words")])
            s.search.add(1, 1, "secret words", date=1)
            s.journal.sent(job.id, "1", 1, 2)
            s.journal.done(job.id)
            s.search.search("secret")
    finally:
        logger.remove(sink)
    assert not any("secret" in m for m in messages)


# -- stats -------------------------------------------------------------------------------


def test_counts(st):
    assert st.counts() == {"pending": 0, "running": 0, "done": 0, "failed": 0, "cached": 0, "indexed": 0}
    a = st.journal.record(1, 1, 1, {})
    b = st.journal.record(1, 2, 2, {})
    c = st.journal.record(1, 3, 3, {})
    st.journal.record(1, 4, 4, {})
    st.journal.start(a.id)
    st.journal.done(b.id)
    st.journal.fail(c.id, "x")
    st.cache.remember(1, "t", "en", 1.0, [])
    st.search.add(1, 2, "t", date=1)
    assert st.counts() == {"pending": 1, "running": 1, "done": 1, "failed": 1, "cached": 1, "indexed": 1}


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
                    job = s.journal.record(t, i, t * 1000 + i, {"t": t})
                    assert job is not None
                    s.journal.start(job.id)
                    s.journal.sent(job.id, "1", t, 10_000 + i)
                    if i % 2:
                        s.journal.done(job.id)
                    s.search.add(t, i, f"thread{t} word{i}", date=i)
                    # every thread also races for one shared message: only one may win
                    s.journal.record(-1, i, None, {"t": t})
            except BaseException as exc:
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
        assert all(
            s.journal.find(t, per_thread - 1).sent == {"1": (t, 10_000 + per_thread - 1)} for t in range(threads)
        )
        assert len(s.journal.unfinished()) == threads * per_thread // 2 + per_thread
        assert [h.chat_id for h in s.search.search("thread2 word7")] == [2]
