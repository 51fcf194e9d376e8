"""Per-chat settings the owner sets with ``.auto`` and ``.lang``, kept in the state database.

Example::

    chats = ChatSettingsStore(db)
    chats.set_auto(42, False)
    chats.get(42)   # ChatSettings(auto=False, language=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .db import Database


@dataclass(frozen=True)
class ChatSettings:
    """Per-chat overrides. ``None`` means "follow the global configuration"."""

    auto: bool | None = None  # automatic transcription on/off for this chat
    language: str | None = None  # pinned Whisper language code; None = detect


class ChatSettingsStore:
    """The ``chat_settings`` table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, chat_id: int) -> ChatSettings:
        """The chat's overrides; all ``None`` for a chat never configured.

        Example::

            chats.get(42)   # ChatSettings(auto=None, language=None)
        """
        row = self._db.one("SELECT auto, language FROM chat_settings WHERE chat_id = ?", (chat_id,))
        if row is None:
            return ChatSettings()
        auto, language = row
        return ChatSettings(auto=None if auto is None else bool(auto), language=language)

    def set_auto(self, chat_id: int, on: bool | None) -> None:
        """Turn automatic transcription on/off in this chat; ``None`` follows the config again.

        Example::

            chats.set_auto(42, False)
            chats.get(42).auto   # False
        """
        self._set(chat_id, "auto", None if on is None else int(bool(on)))

    def set_language(self, chat_id: int, code: str | None) -> None:
        """Pin the chat's language (stored lower-case, e.g. ``"ru"``); ``None`` or ``""`` = detect.

        The code is not checked here: the transcriber knows which codes exist.

        Example::

            chats.set_language(42, "RU")
            chats.get(42).language   # 'ru'
        """
        value = code.strip().lower() if code is not None else None
        self._set(chat_id, "language", value or None)

    def _set(self, chat_id: int, column: str, value: Any) -> None:
        assert column in ("auto", "language")  # a fixed name, never from a message
        with self._db.tx() as conn:
            conn.execute(
                f"INSERT INTO chat_settings (chat_id, {column}) VALUES (?, ?) "
                f"ON CONFLICT (chat_id) DO UPDATE SET {column} = excluded.{column}",
                (chat_id, value),
            )
            # A chat back on all defaults needs no row.
            conn.execute(
                "DELETE FROM chat_settings WHERE chat_id = ? AND auto IS NULL AND language IS NULL", (chat_id,)
            )
