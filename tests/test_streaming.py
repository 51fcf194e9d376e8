"""Speech chunks as they arrive: pulled as far as asked, handed out in order, decoded ahead."""

import numpy as np
import pytest

from voicebot.audio.chunking import SAMPLE_RATE, Chunk
from voicebot.audio.streaming import WINDOW, SpeechStream, prefetched

RATE = SAMPLE_RATE


def ramp_chunks(layout):
    """Chunks whose samples are their own stream positions (so any read can be checked),
    from ``[(offset_s, duration_s, gaps), ...]``."""
    chunks, at = [], 0
    for offset, seconds, gaps in layout:
        n = int(seconds * RATE)
        chunks.append(Chunk(offset, np.arange(at, at + n, dtype=np.float32), tuple(gaps)))
        at += n
    return chunks


class Pulled:
    """An iterator that records how many chunks were taken from it."""

    def __init__(self, chunks):
        self.chunks, self.taken = chunks, 0

    def __iter__(self):
        for chunk in self.chunks:
            self.taken += 1
            yield chunk


def test_reads_across_chunks_pulling_only_what_is_asked():
    chunks = ramp_chunks([(1.0, 10.0, []), (20.0, 5.0, [(2.0, 3.0)]), (40.0, 20.0, [])])
    source = Pulled(chunks)
    stream = SpeechStream(source)
    stream.fill(12 * RATE)
    assert stream.length == 15 * RATE and not stream.done and source.taken == 2  # two chunks were enough
    np.testing.assert_array_equal(stream.read(9 * RATE, 11 * RATE), np.arange(9 * RATE, 11 * RATE))
    assert stream.first is chunks[0]
    stream.fill(10**9)
    assert stream.done and stream.length == 35 * RATE
    with pytest.raises(ValueError):  # never pulled: nothing to read there
        stream.read(30 * RATE, 40 * RATE)


def test_chunks_are_handed_out_in_order_and_released():
    chunks = ramp_chunks([(i * 10.0, 8.0, []) for i in range(5)])
    source = Pulled(chunks)
    stream = SpeechStream(source)
    stream.fill(WINDOW)  # what language detection reads first: four 8 s chunks
    assert source.taken == 4
    handed = []
    for chunk in stream.chunks():
        handed.append(chunk)
        assert source.taken <= max(4, len(handed))  # the rest only as they are asked for
    assert handed == chunks
    with pytest.raises(ValueError):  # handed out: no longer held
        stream.read(0, RATE)


def test_prefetched_keeps_order_and_raises_where_it_happened():
    def numbers():
        yield from range(5)
        raise ValueError("broken file")

    got = []
    with pytest.raises(ValueError, match="broken file"):
        for n in prefetched(numbers()):
            got.append(n)
    assert got == [0, 1, 2, 3, 4]


def test_closing_prefetched_stops_and_closes_the_producer():
    import threading

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    before = threading.active_count()
    items = prefetched(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.wait(5) and threading.active_count() == before
    never = prefetched(endless())  # never iterated: no thread at all
    assert threading.active_count() == before
    del never
