"""The bot's durable state: one SQLite file (``DATA_DIR/voicebot.db``, mode 0600), five concerns.

* :attr:`State.journal` - the job journal (:mod:`.journal`): exactly one answer per voice
* :attr:`State.cache` - finished transcripts by document id (:mod:`.cache`)
* :attr:`State.chats` - per-chat ``.auto`` / ``.lang`` settings (:mod:`.chat_settings`)
* :attr:`State.search` - the full-text index behind ``.find`` (:mod:`.search`)
* :attr:`State.marks` - named moments, such as since when the bot watches (:mod:`.marks`)

Example::

    with State.in_dir(settings.data_dir) as state:
        job = state.journal.record(42, 7, 555, {"target": "reply"})
        state.cache.remember(555, "hello there", "en", 1.5, [(0.0, 1.5, "hello there")])
        state.search.add(42, 7, "hello there", date=msg_date)
        state.chats.set_auto(42, False)
        state.counts()   # {'pending': 1, ..., 'cached': 1, 'indexed': 1}

Every failure of the database is raised as :class:`StateError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .cache import TranscriptCache
from .chat_settings import ChatSettingsStore
from .db import DB_NAME, Database, StateError
from .journal import Journal
from .marks import WATCHING_SINCE, Marks
from .search import SearchIndex

__all__ = ["DB_NAME", "WATCHING_SINCE", "State", "StateError"]


class State:
    """The open database and the stores over it. Use as a context manager or call :meth:`close`.

    ``clock`` returns the current Unix time; tests pass a fake one to age rows.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        self.db = Database(path, clock=clock)
        try:
            self.search = SearchIndex(self.db)
        except BaseException:
            self.db.close()
            raise
        self.journal = Journal(self.db)
        self.cache = TranscriptCache(self.db)
        self.chats = ChatSettingsStore(self.db)
        self.marks = Marks(self.db)

    @classmethod
    def in_dir(cls, data_dir: Path) -> State:
        """Open ``data_dir/voicebot.db``.

        Example::

            state = State.in_dir(Path("data"))   # data/voicebot.db
        """
        return cls(Path(data_dir) / DB_NAME)

    @property
    def path(self) -> Path:
        return self.db.path

    def counts(self) -> dict[str, int]:
        """Totals for ``.status``: jobs by state, cached and indexed transcripts.

        Example::

            state.counts()
            # {'pending': 0, 'running': 1, 'done': 40, 'failed': 2, 'cached': 38, 'indexed': 40}
        """
        return {**self.journal.counts(), "cached": self.cache.count(), "indexed": self.search.count()}

    def close(self) -> None:
        """Close the database. Idempotent; any later call raises :class:`StateError`."""
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
