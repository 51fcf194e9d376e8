from dataclasses import dataclass

from voicebot.state import State
from voicebot.state.cache import Cached


@dataclass
class Seg:  # shaped like voicebot.engine.Segment
    start: float
    end: float
    text: str
    no_speech_prob: float = 0.0


def test_cache_round_trip_with_segments(tmp_path):
    db = tmp_path / "state.db"
    with State(db) as s:
        assert s.cache.get(555) is None
        s.cache.remember(555, 'Привет. Hello "there"', "ru", 3.25, [(0, 1.5, "Привет."), (1.5, 3.25, 'Hello "there"')])
        s.cache.remember(556, "x", None, 1, [Seg(0.0, 1.0, "x")])
    with State(db) as s:
        hit = s.cache.get(555)
        assert hit == Cached(
            text='Привет. Hello "there"',
            language="ru",
            duration=3.25,
            segments=[(0.0, 1.5, "Привет."), (1.5, 3.25, 'Hello "there"')],
        )
        assert all(isinstance(seg, tuple) for seg in hit.segments)
        assert s.cache.get(556) == Cached("x", None, 1.0, [(0.0, 1.0, "x")])
        s.cache.remember(555, "new", "en", 1.0, [])
        assert s.cache.get(555) == Cached("new", "en", 1.0, [])
        assert s.cache.get(999) is None
        assert s.cache.count() == 2
