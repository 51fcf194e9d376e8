"""The remote engine's own decisions (language, order, guard), with in-process clients standing
in for servers that answer in a chosen way. Real servers: tests/test_remote.py."""

import threading
import time

import numpy as np
import pytest

from voicebot import audio
from voicebot.engine import Segment
from voicebot.engine.remote.pool import Endpoint, EndpointPool
from voicebot.engine.remote.transcriber import RemoteTranscriber
from voicebot.engine.remote.wire import Heard, language_code

from .helpers import FIXTURES


class Server:
    """Answers every chunk with one segment; says ``language`` when none is asked for."""

    def __init__(self, language, probability=None, text="words", **signals):
        self.language, self.probability, self.text, self.signals = language, probability, text, signals
        self.asked = []
        self.lock = threading.Lock()

    def ping(self, timeout):
        pass

    def transcribe(self, samples, language):
        with self.lock:
            self.asked.append(language)
        segment = Segment(0.0, len(samples) / 16_000, self.text, **self.signals)
        return Heard(language or self.language, None if language else self.probability, (segment,))


@pytest.fixture(scope="module")
def voice():
    return np.concatenate([audio.decode(FIXTURES / "long.ogg")] * 2)  # 4 chunks


def engine(server, endpoints=2):
    return RemoteTranscriber(
        EndpointPool([Endpoint(f"http://s{i}:8000/v1", server) for i in range(endpoints)]),
        kind="openai",
        model_name="m",
    )


def test_an_unsure_confusable_detection_yields_to_the_chats_language(voice):
    server = Server("ru")  # no probability: unsure
    result = engine(server).transcribe(voice, prefer="uk")
    assert result.language == "uk"
    assert server.asked.count("uk") == len(result.segments)  # every chunk ends up heard in uk
    assert server.asked.count(None) <= 2  # at most the first window, sent before the first answer


def test_a_later_chunk_answered_first_sends_nothing_more_undecided(voice):
    """Chunk 2 comes back before chunk 1 (under load, or a faster server): its free slot must
    wait for chunk 1's language instead of sending chunk 3 undecided (seen once in CI)."""

    class FirstIsSlow(Server):
        calls = 0

        def transcribe(self, samples, language):
            with self.lock:
                first, self.calls = self.calls == 0, self.calls + 1
            if first:  # hold chunk 1 until chunk 2 is in, then until a third request or 1 s
                deadline = time.monotonic() + 60
                while self.calls < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                deadline = time.monotonic() + 1.0
                while self.calls < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
            return super().transcribe(samples, language)

    server = FirstIsSlow("ru")
    result = engine(server).transcribe(voice, prefer="uk")
    assert result.language == "uk"
    assert server.asked.count(None) == 2, server.asked  # the first window only
    assert server.asked.count("uk") == len(result.segments) == 4


def test_a_detection_outside_the_group_stands(voice):
    server = Server("en")
    result = engine(server).transcribe(voice, prefer="uk")
    assert result.language == "en" and "uk" not in server.asked


def test_a_server_that_names_no_language_gets_the_pinned_one(voice):
    server = Server(None)  # Wyoming: text only
    result = engine(server).transcribe(voice, prefer="de")
    assert result.language == "de" and server.asked.count("de") == len(result.segments)
    assert engine(Server(None)).transcribe(voice).language == ""  # nothing pinned: unknown


def test_a_forced_language_goes_with_every_chunk(voice):
    server = Server("ru")
    engine(server).transcribe(voice, "uk", prefer="ru")
    assert set(server.asked) == {"uk"}


def test_segments_are_in_order_with_recording_times(voice):
    result = engine(Server("en"), endpoints=3).transcribe(voice)
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and len(starts) >= 3
    assert result.segments[-1].end <= len(voice) / 16_000 + 0.01
    assert all(b.start >= a.end - 0.01 for a, b in zip(result.segments, result.segments[1:]))


@pytest.mark.parametrize(
    "signals, kept",
    [
        ({}, True),
        ({"no_speech_prob": 0.9}, False),  # the server's own no-speech signal
        ({"compression_ratio": 3.0}, False),  # a repetition loop
    ],
)
def test_hallucination_guard_applies_to_what_servers_return(voice, signals, kept):
    result = engine(Server("en", **signals)).transcribe(voice)
    assert bool(result.segments) is kept


def test_silence_is_never_sent():
    server = Server("en", text="Thank you.")
    assert engine(server).transcribe(np.zeros(16_000 * 20, dtype=np.float32)).no_speech
    assert server.asked == []


def test_language_names_become_codes():
    assert language_code("English") == "en" and language_code("haitian creole") == "ht"
    assert language_code("uk") == "uk" and language_code("") is None
