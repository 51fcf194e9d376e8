"""Per-chat settings the owner sets with ``.auto``, ``.lang``, ``.vocab`` and ``.tr auto``, kept in the state database.

Example::

    chats = ChatSettingsStore(db)
    chats.set_auto(42, False)
    chats.get(42)   # ChatSettings(auto=False, language=None, languages=(), vocabulary=(), translate=None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .db import Database

MAX_TERMS = 100  # a chat's own vocabulary; the prompt budget cuts far sooner anyway
_COLUMNS = ("auto", "language", "languages", "vocabulary", "translate")


@dataclass(frozen=True)
class ChatSettings:
    """Per-chat overrides. ``None`` / empty means "follow the global configuration"."""

    auto: bool | None = None  # automatic transcription on/off for this chat
    language: str | None = None  # pinned Whisper language code; None = detect
    languages: tuple[str, ...] = ()  # detect within these (.lang ru,en); () = WHISPER_LANGUAGES
    vocabulary: tuple[str, ...] = ()  # the chat's own terms (.vocab), oldest first
    translate: str | None = None  # every transcript here is also translated into this (.tr auto)


class ChatSettingsStore:
    """The ``chat_settings`` table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, chat_id: int) -> ChatSettings:
        """The chat's overrides; all ``None`` / empty for a chat never configured.

        Example::

            chats.get(42)   # ChatSettings(auto=None, language=None, languages=(), ...)
        """
        row = self._db.one(
            "SELECT auto, language, languages, vocabulary, translate FROM chat_settings WHERE chat_id = ?",
            (chat_id,),
        )
        if row is None:
            return ChatSettings()
        auto, language, languages, vocabulary, translate = row
        return ChatSettings(
            auto=None if auto is None else bool(auto),
            language=language,
            languages=tuple(languages.split(",")) if languages else (),
            vocabulary=tuple(json.loads(vocabulary)) if vocabulary else (),
            translate=translate,
        )

    def set_auto(self, chat_id: int, on: bool | None) -> None:
        """Turn automatic transcription on/off in this chat; ``None`` follows the config again.

        Example::

            chats.set_auto(42, False)
            chats.get(42).auto   # False
        """
        self._set(chat_id, auto=None if on is None else int(bool(on)))

    def set_language(self, chat_id: int, code: str | None) -> None:
        """Pin the chat's language (stored lower-case, e.g. ``"ru"``); ``None`` or ``""`` = detect.
        A language set the chat had is dropped: one pin or one set, never both.

        The code is not checked here: the transcriber knows which codes exist.

        Example::

            chats.set_language(42, "RU")
            chats.get(42).language   # 'ru'
        """
        value = code.strip().lower() if code is not None else None
        self._set(chat_id, language=value or None, languages=None)

    def set_languages(self, chat_id: int, codes: Iterable[str]) -> None:
        """Detect within ``codes`` in this chat (lower-case, order kept); empty = follow the
        config. A pinned language the chat had is dropped.

        Example::

            chats.set_languages(42, ["ru", "EN"])
            chats.get(42).languages   # ('ru', 'en')
        """
        items = list(dict.fromkeys(c.strip().lower() for c in codes if c.strip()))
        self._set(chat_id, language=None, languages=",".join(items) or None)

    def set_translate(self, chat_id: int, code: str | None) -> None:
        """Translate every transcript in this chat into ``code`` (lower-case); ``None`` = off.

        Example::

            chats.set_translate(42, "en")
            chats.get(42).translate   # 'en'
        """
        self._set(chat_id, translate=code.strip().lower() if code else None)

    def add_terms(self, chat_id: int, terms: Iterable[str]) -> tuple[str, ...]:
        """Add ``terms`` to the chat's vocabulary (a term already there, in any case, is not
        added twice; at most :data:`MAX_TERMS`, the oldest dropped first). Returns the vocabulary.

        Example::

            chats.add_terms(42, ["Siobhan", "Llandudno"])   # ('Siobhan', 'Llandudno')
        """
        current = list(self.get(chat_id).vocabulary)
        known = {t.casefold() for t in current}
        for term in terms:
            term = " ".join(term.split())
            if term and term.casefold() not in known:
                current.append(term)
                known.add(term.casefold())
        current = current[-MAX_TERMS:]
        self._set(chat_id, vocabulary=json.dumps(current, ensure_ascii=False) if current else None)
        return tuple(current)

    def remove_terms(self, chat_id: int, terms: Iterable[str]) -> tuple[str, ...]:
        """Remove ``terms`` (any case) from the chat's vocabulary. Returns what is left.

        Example::

            chats.remove_terms(42, ["siobhan"])   # ('Llandudno',)
        """
        gone = {" ".join(t.split()).casefold() for t in terms}
        left = [t for t in self.get(chat_id).vocabulary if t.casefold() not in gone]
        self._set(chat_id, vocabulary=json.dumps(left, ensure_ascii=False) if left else None)
        return tuple(left)

    def _set(self, chat_id: int, **values: Any) -> None:
        assert set(values) <= set(_COLUMNS)  # fixed names, never from a message
        columns = ", ".join(values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values)
        with self._db.tx() as conn:
            conn.execute(
                f"INSERT INTO chat_settings (chat_id, {columns}) VALUES (?{', ?' * len(values)}) "
                f"ON CONFLICT (chat_id) DO UPDATE SET {updates}",
                (chat_id, *values.values()),
            )
            # A chat back on all defaults needs no row.
            conn.execute(
                "DELETE FROM chat_settings WHERE chat_id = ? AND " + " AND ".join(f"{c} IS NULL" for c in _COLUMNS),
                (chat_id,),
            )
