"""Whisper's windows over speech chunks as they arrive: positions, time mapping, memory."""

import numpy as np
import pytest

from voicebot.audio.chunking import SAMPLE_RATE, Chunk
from voicebot.audio.streaming import CONTEXT, WINDOW, SpeechStream, prefetched, windows

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


def test_reads_across_chunks_and_maps_times_back():
    chunks = ramp_chunks([(1.0, 10.0, []), (20.0, 5.0, [(2.0, 3.0)]), (40.0, 20.0, [])])
    stream = SpeechStream(chunks)
    stream.fill(12 * RATE)
    assert stream.length == 15 * RATE and not stream.done  # two chunks were enough
    np.testing.assert_array_equal(stream.read(9 * RATE, 11 * RATE), np.arange(9 * RATE, 11 * RATE))
    assert stream.time(0.5) == 1.5
    assert stream.time(10.0) == 20.0 and stream.time(10.0, end=True) == 11.0  # a joint: start vs end
    assert stream.time(13.0) == 26.0  # after the 3 s taken out of the second chunk
    stream.fill(10**9)
    assert stream.done and stream.length == 35 * RATE
    assert stream.time(35.0, end=True) == 60.0 and stream.time(99.0) == 60.0  # past the end: the end
    stream.release(16 * RATE)
    with pytest.raises(ValueError):  # released: nothing left to read there
        stream.read(0, RATE)


def test_windows_start_as_soon_as_their_speech_exists_and_follow_the_seek():
    source = Pulled(ramp_chunks([(i * 10.0, 8.0, []) for i in range(20)]))  # 160 s of speech in 8 s chunks
    stream = SpeechStream(source)
    calls = []

    def decode(audio, start, stop):
        calls.append((int(audio[start]), stop - start, source.taken, start, len(audio) - stop))
        # one segment per window, ending 25 s in: Whisper's seek goes there
        return [(1.0, 25.0, f"w{len(calls)}")], 25 * RATE

    out = list(windows(stream, decode))
    assert [c[0] for c in calls] == [i * 25 * RATE for i in range(len(calls))]  # each window starts at the seek
    assert all(length == WINDOW for _, length, *_ in calls[:-1]) and calls[-1][1] <= WINDOW
    assert calls[0][2] == 4  # the first window needed 30 s: four 8 s chunks, not all twenty
    assert all(taken * 8 * RATE <= first + WINDOW + CONTEXT + 8 * RATE for first, _, taken, *_ in calls)
    assert calls[0][3] == 0 and all(before == CONTEXT for _, _, _, before, _ in calls[1:])  # context before...
    assert all(after == CONTEXT for *_, after in calls[:-1])  # ...and after, where there is speech
    # window 2 starts 25 s into the speech; its segment, 26 s → 50 s into the speech, is
    # 2 s into chunk 3 (at 30 s in the recording) → 2 s into chunk 6 (at 60 s)
    assert out[1] == (32.0, 62.0, "w2")


def test_a_quick_first_window_is_the_first_chunk_alone():
    stream = SpeechStream(ramp_chunks([(0.0, 4.0, []), (5.0, 25.0, []), (31.0, 25.0, [])]))
    lengths = []

    def decode(audio, start, stop):
        lengths.append(stop - start)
        return [], stop - start  # nothing said; the whole window is consumed

    list(windows(stream, decode, quick_first=True))
    assert lengths[0] == 4 * RATE and lengths[1] == WINDOW


def test_a_stuck_or_overshooting_seek_still_moves_on():
    stream = SpeechStream(ramp_chunks([(0.0, 70.0, [])]))
    seen = []

    def decode(audio, start, stop):
        seen.append(int(audio[start]))
        return [], 0 if len(seen) == 1 else 10 * WINDOW  # 0: no progress; then: beyond the window

    list(windows(stream, decode))
    assert seen == [0, WINDOW, 2 * WINDOW]


def test_only_the_current_window_is_held():
    """Ten minutes of speech: the stream never holds much more than a window and a chunk."""
    stream = SpeechStream(ramp_chunks([(i * 30.0, 29.0, []) for i in range(21)]))
    held = []

    def decode(audio, start, stop):
        held.append(sum(len(c.samples) for _, c in stream._held))
        return [], 20 * RATE

    list(windows(stream, decode))
    assert max(held) <= WINDOW + CONTEXT + 2 * 29 * RATE


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
