from pathlib import Path

import pytest

from voicebot.state import State
from voicebot.state import search as search_mod


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def no_fts(monkeypatch):
    monkeypatch.setattr(search_mod, "_has_fts5", lambda conn: False)


HOSTILE = [
    '"',
    '""',
    "*",
    "OR",
    "a OR b",
    "NEAR(",
    "NEAR(a b)",
    "-",
    ")",
    "(",
    "^",
    ":",
    "text:meet",
    '"unbalanced',
    "AND",
    "NOT meet",
    "+",
    "'; DROP TABLE jobs; --",
    "meet*",
    "*meet",
    "\x00",
    "meet\x00station",
    "{text}: meet",
    'привет"',
    "«»",
    "  ",
]


def _fill(s: State) -> None:
    s.search.add(1, 10, "Meet me at the station at noon", date=1000)
    s.search.add(1, 11, "The train station is closed today", date=3000)
    s.search.add(2, 20, "Привет, встретимся на вокзале", date=2000)
    s.search.add(2, 21, "We need more station coffee", date=4000)


@pytest.fixture(params=["fts5", "fallback"])
def searchable(request, db, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr(search_mod, "_has_fts5", lambda conn: False)
    with State(db) as s:
        assert s.search.fts is (request.param == "fts5")
        _fill(s)
        yield s


def test_search_finds_words_newest_first(searchable):
    s = searchable
    hits = s.search.search("station")
    assert [(h.chat_id, h.message_id) for h in hits] == [(2, 21), (1, 11), (1, 10)]
    assert [h.date for h in hits] == [4000, 3000, 1000]
    assert all("«station»" in h.snippet.lower() for h in hits)
    assert [h.message_id for h in s.search.search("STATION noon")] == [10]  # AND, case-insensitive
    assert s.search.search("station giraffe") == []
    assert [h.message_id for h in s.search.search("station", limit=2)] == [21, 11]
    assert s.search.search("station", limit=0) == []


def test_search_filters_by_chat(searchable):
    assert [h.message_id for h in searchable.search.search("station", chat_id=1)] == [11, 10]
    assert [h.message_id for h in searchable.search.search("station", chat_id=2)] == [21]
    assert searchable.search.search("station", chat_id=3) == []


def test_search_cyrillic_and_prefix(searchable):
    hits = searchable.search.search("привет")
    assert [(h.chat_id, h.message_id) for h in hits] == [(2, 20)]
    assert "«Привет»" in hits[0].snippet
    assert [h.message_id for h in searchable.search.search("ВОКЗАЛ")] == [20]  # prefix of "вокзале"
    assert [h.message_id for h in searchable.search.search("coff")] == [21]


def test_search_hostile_queries_never_raise(searchable):
    for query in HOSTILE:
        hits = searchable.search.search(query)
        assert isinstance(hits, list), query
    assert searchable.search.search("") == [] and searchable.search.search("   ") == []
    assert searchable.search.search('"*-)(') == []
    # operators are plain words: "OR" must not widen the search to either side
    assert searchable.search.search("noon OR coffee") == []
    # quotes and stars around a real word still find it, and nothing was dropped
    assert [h.message_id for h in searchable.search.search('"noon"*')] == [10]
    assert [h.message_id for h in searchable.search.search("NEAR(noon")] == []
    assert searchable.counts()["indexed"] == 4


def test_reindex_replaces_text(searchable):
    searchable.search.add(1, 10, "completely different words", date=1000)
    assert [h.message_id for h in searchable.search.search("noon")] == []
    assert [h.message_id for h in searchable.search.search("different")] == [10]
    assert searchable.counts()["indexed"] == 4


def test_index_built_when_fts5_becomes_available(db, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(search_mod, "_has_fts5", lambda conn: False)
        with State(db) as s:
            _fill(s)
            assert not s.search.fts
    with State(db) as s:  # now with FTS5: rows written meanwhile are indexed
        assert s.search.fts
        assert [h.message_id for h in s.search.search("station", chat_id=1)] == [11, 10]


def test_fallback_is_logged_once(db, no_fts, monkeypatch):
    from loguru import logger

    monkeypatch.setattr(search_mod, "_warned_no_fts", False)
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        State(db).close()
        State(db).close()
    finally:
        logger.remove(sink)
    assert sum("FTS5" in m for m in messages) == 1
