"""Finished transcripts by Telegram document id: a forwarded voice is answered at once.

The document id is the same for every forward of a file, so the cache is keyed by it.
View-once media never enter it (see :mod:`.pipeline`).

Example::

    cache = TranscriptCache(db)
    cache.remember(555, "hello there", "en", 1.5, [(0.0, 1.5, "hello there")])
    cache.get(555).segments[0]   # (0.0, 1.5, 'hello there')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from .db import Database


@dataclass(frozen=True)
class Cached:
    """A finished transcript of one Telegram document, with timed segments for .srt."""

    text: str
    language: str | None
    duration: float
    segments: list[tuple[float, float, str]]


class TranscriptCache:
    """The ``transcript_cache`` table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, document_id: int) -> Cached | None:
        """The stored transcript of this Telegram document, or ``None``.

        Example::

            hit = cache.get(555)
            if hit: print(hit.text, hit.segments[0])   # 'hello there' (0.0, 1.5, 'hello there')
        """
        row = self._db.one(
            "SELECT text, language, duration, segments FROM transcript_cache WHERE document_id = ?", (document_id,)
        )
        if row is None:
            return None
        text, language, duration, segments = row
        return Cached(
            text=text,
            language=language,
            duration=duration,
            segments=[(float(s), float(e), str(t)) for s, e, t in json.loads(segments)],
        )

    def remember(
        self, document_id: int, text: str, language: str | None, duration: float, segments: Iterable[Any]
    ) -> None:
        """Cache a transcript. ``segments``: ``(start, end, text)`` tuples or objects with
        ``.start``/``.end``/``.text`` (the transcriber's ``Segment``). Replaces an older entry.

        Example::

            cache.remember(555, "hello there", "en", 1.5, [(0.0, 1.5, "hello there")])
        """
        rows = [_segment_tuple(seg) for seg in segments]
        with self._db.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO transcript_cache "
                "(document_id, text, language, duration, segments, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (document_id, text, language, float(duration), json.dumps(rows, ensure_ascii=False), self._db.clock()),
            )
        logger.debug("cached transcript of document {} ({} segment(s))", document_id, len(rows))

    def extra(self, document_id: int, kind: str) -> str | None:
        """What the LLM made of this document's transcript: ``summary``, ``clean`` (the
        cleaned-up text; the raw one stays in :meth:`get`), ``tr:en``…; ``None`` if nothing yet.

        Example::

            cache.remember_extra(555, "tr:de", "hallo")
            cache.extra(555, "tr:de")   # 'hallo'
        """
        row = self._db.one("SELECT text FROM transcript_extras WHERE document_id = ? AND kind = ?", (document_id, kind))
        return row[0] if row else None

    def remember_extra(self, document_id: int, kind: str, text: str) -> None:
        """Keep an LLM's text beside the transcript (replaces one of the same kind)."""
        with self._db.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO transcript_extras (document_id, kind, text, created_at) VALUES (?, ?, ?, ?)",
                (document_id, kind, text, self._db.clock()),
            )

    def count(self) -> int:
        return self._db.one("SELECT count(*) FROM transcript_cache", ())[0]


def _segment_tuple(seg: Any) -> tuple[float, float, str]:
    if hasattr(seg, "start") and hasattr(seg, "end") and hasattr(seg, "text"):
        return float(seg.start), float(seg.end), str(seg.text)
    start, end, text = seg
    return float(start), float(end), str(text)
