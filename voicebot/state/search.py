"""Full-text search over delivered transcripts (the owner's ``.find``).

An external-content FTS5 index when this sqlite3 has FTS5, a substring scan otherwise.
View-once transcripts are never indexed (see :mod:`.pipeline`).

Example::

    index = SearchIndex(db)
    index.add(42, 7, "meet me at the station", date=msg_date)
    index.search("station", chat_id=42)
    # [Hit(chat_id=42, message_id=7, snippet='meet me at the «station»', date=...)]
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from loguru import logger

from .db import Database, StateError

_SNIPPET_TOKENS = 12
_MARK_OPEN, _MARK_CLOSE, _ELLIPSIS = "«", "»", "…"

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


@dataclass(frozen=True)
class Hit:
    """A search result. ``snippet`` is raw transcript text with the match in «»: escape it."""

    chat_id: int
    message_id: int
    snippet: str
    date: float


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


class SearchIndex:
    """The ``transcripts`` table and its FTS5 index. ``fts`` is False for the substring fallback."""

    def __init__(self, db: Database):
        self._db = db
        self.fts = False
        db.setup(self._setup)

    def add(self, chat_id: int, message_id: int, text: str, date: float) -> None:
        """Make a delivered transcript searchable (``date``: the voice message's Unix time).
        Indexing the same message again replaces its text.

        Example::

            index.add(42, 7, "meet me at the station", date=msg_date)
        """
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO transcripts (chat_id, message_id, text, date) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO UPDATE "
                "SET text = excluded.text, date = excluded.date",
                (chat_id, message_id, text, float(date)),
            )

    def append(self, chat_id: int, message_id: int, text: str) -> None:
        """Make more text findable as this message (a summary, a translation); nothing if
        the message was never indexed (view-once, no speech) or already holds ``text``.

        Example::

            index.append(42, 7, "Zusammenfassung: Treffen am Bahnhof")
        """
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE transcripts SET text = text || ? WHERE chat_id = ? AND message_id = ? AND instr(text, ?) = 0",
                ("\n" + text, chat_id, message_id, text),
            )

    def search(self, query: str, limit: int = 10, chat_id: int | None = None) -> list[Hit]:
        """Transcripts holding every word of ``query`` (the last one as a prefix), newest first.

        ``query`` is a user's text taken literally: quotes, ``*``, ``OR``, ``NEAR(`` and
        the like are plain words, never FTS syntax, so no query can raise or inject.
        Newest first rather than by rank: every hit holds all the words, and people look
        for "what was said about X lately"; it also orders the same without FTS5.

        Example::

            index.search("station", chat_id=42)
            # [Hit(chat_id=42, message_id=7, snippet='meet me at the «station»', date=...)]
        """
        words = _query_words(query)
        limit = max(0, int(limit))
        if not words or not limit:
            return []
        chat_filter = "" if chat_id is None else " AND t.chat_id = ?"
        chat_args: tuple = () if chat_id is None else (chat_id,)
        if self.fts:
            rows = self._db.all(
                "SELECT t.chat_id, t.message_id, "
                f"snippet(transcripts_fts, 0, ?, ?, ?, {_SNIPPET_TOKENS}), t.date "
                "FROM transcripts_fts JOIN transcripts AS t ON t.id = transcripts_fts.rowid "
                f"WHERE transcripts_fts MATCH ?{chat_filter} "
                "ORDER BY t.date DESC, t.id DESC LIMIT ?",
                (_MARK_OPEN, _MARK_CLOSE, _ELLIPSIS, _fts_query(words), *chat_args, limit),
            )
            return [Hit(chat_id=c, message_id=m, snippet=s, date=d) for c, m, s, d in rows]
        # Fallback without FTS5: a case-insensitive substring test per word (a Python
        # function, because SQLite's LIKE folds ASCII only and would miss "Привет").
        conditions = " AND ".join("_vb_contains(t.text, ?)" for _ in words)
        rows = self._db.all(
            f"SELECT t.chat_id, t.message_id, t.text, t.date FROM transcripts AS t "
            f"WHERE {conditions}{chat_filter} ORDER BY t.date DESC, t.id DESC LIMIT ?",
            (*words, *chat_args, limit),
        )
        return [Hit(chat_id=c, message_id=m, snippet=_plain_snippet(text, words), date=d) for c, m, text, d in rows]

    def count(self) -> int:
        return self._db.one("SELECT count(*) FROM transcripts", ())[0]

    def _setup(self, conn: sqlite3.Connection) -> None:
        global _warned_no_fts
        conn.create_function("_vb_contains", 2, _contains, deterministic=True)
        try:
            if not _has_fts5(conn):
                # Triggers left by an FTS5 build would fail every insert here; drop them
                # (they and a full rebuild come back when FTS5 is available again).
                conn.executescript("".join(f"DROP TRIGGER IF EXISTS {name};" for name in _FTS_TRIGGERS))
                if not _warned_no_fts:
                    _warned_no_fts = True
                    logger.warning("this sqlite3 has no FTS5: transcript search falls back to a slower substring scan")
                return
            present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            conn.executescript(f"BEGIN; {_FTS_SETUP}; COMMIT;")
            if not set(_FTS_TRIGGERS) <= present:
                # New index, or rows were added while it was not kept up to date.
                conn.execute("INSERT INTO transcripts_fts (transcripts_fts) VALUES ('rebuild')")
            self.fts = True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StateError(f"cannot set up search: {exc}") from exc


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
        return text[: width * 2] + (_ELLIPSIS if len(text) > width * 2 else "")
    end = at + len(words[0])
    start = max(0, at - width)
    stop = min(len(text), end + width)
    return (
        (_ELLIPSIS if start else "")
        + text[start:at]
        + _MARK_OPEN
        + text[at:end]
        + _MARK_CLOSE
        + text[end:stop]
        + (_ELLIPSIS if stop < len(text) else "")
    )
