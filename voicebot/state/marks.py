"""Named moments kept in the state database: since when the bot watches the account.

``watching_since`` is set once, by ``login`` when it signs in, or by the first ``run`` before
it connects, and never moved: voices newer than it are the bot's to answer (backfill looks
no further back), older ones were there before it and are not.

Example::

    marks = Marks(db)
    marks.keep("watching_since", time.time())   # the first call wins
    marks.get("watching_since")                  # 1764680000.0
"""

from __future__ import annotations

from .db import Database

WATCHING_SINCE = "watching_since"


class Marks:
    """The ``marks`` table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, name: str) -> float | None:
        row = self._db.one("SELECT value FROM marks WHERE name = ?", (name,))
        return None if row is None else float(row[0])

    def keep(self, name: str, value: float) -> float:
        """Set ``name`` to ``value`` unless it is set already; return what it holds now."""
        with self._db.tx() as conn:
            conn.execute("INSERT OR IGNORE INTO marks (name, value) VALUES (?, ?)", (name, value))
            return float(conn.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()[0])
