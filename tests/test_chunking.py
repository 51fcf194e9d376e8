"""Chunking: cuts in pauses only, right offsets, any block sizes, memory bounded by one chunk.

Most tests use synthetic "speech" (tone bursts, each a word) and an energy detector, so the
place of every word and pause is known exactly; the Silero detector on real speech is
tested in test_transcriber.py.
"""

import itertools
import tracemalloc

import numpy as np
import pytest

from voicebot.audio.chunking import FRAME, SAMPLE_RATE, Chunk, speech_chunks

RATE = SAMPLE_RATE


class Threshold:
    """Speech = a frame louder than -40 dBFS. Counts what it is fed, to check framing."""

    def __init__(self):
        self.fed = 0

    def __call__(self, frames):
        assert len(frames) % FRAME == 0
        self.fed += len(frames)
        rms = np.sqrt(np.mean(frames.reshape(-1, FRAME) ** 2, axis=1))
        return (rms > 0.01).astype(np.float32)


def voice(layout, seed=0):
    """Samples and word spans (in samples) from a layout like ``[("word", 0.4), ("pause", 0.2), ...]``."""
    rng = np.random.default_rng(seed)
    parts, words, at = [], [], 0
    for kind, seconds in layout:
        n = int(seconds * RATE)
        if kind == "word":
            t = np.arange(n) / RATE
            parts.append((0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * t)).astype(np.float32))
            words.append((at, at + n))
        else:
            parts.append(rng.normal(0, 0.001, n).astype(np.float32))  # room noise, well under -40 dBFS
        at += n
    return np.concatenate(parts), words


def talk(seconds, pause_every=6, seed=0):
    """Words of 0.25–0.6 s with 0.04 s between them (no cut fits there), a 0.15–0.6 s pause
    between phrases of ``pause_every`` words."""
    rng = np.random.default_rng(seed)
    layout, total, i = [("pause", 0.5)], 0.5, 0
    while total < seconds:
        word = float(rng.uniform(0.25, 0.6))
        gap = float(rng.uniform(0.15, 0.6)) if i % pause_every == pause_every - 1 else 0.04
        layout += [("word", word), ("pause", gap)]
        total += word + gap
        i += 1
    return voice(layout, seed)


def blocks_of(samples, size):
    return [samples[i : i + size] for i in range(0, len(samples), size)]


def located(chunk, samples):
    """Check the chunk's samples are the recording's, at the times the chunk claims."""
    start = round(chunk.offset * RATE)
    pieces, at = [], 0
    bounds = [*((round(p * RATE), round(r * RATE)) for p, r in chunk.gaps), (len(chunk.samples), 0)]
    for position, removed in bounds:
        pieces.append((start, at, position - at))
        start += position - at + removed
        at = position
    for origin, inside, n in pieces:
        np.testing.assert_array_equal(chunk.samples[inside : inside + n], samples[origin : origin + n])
    return pieces


def word_chunks(chunks, words, samples):
    """Which chunk each word landed in; fails if a word is split or missing."""
    placed = [(i, origin, n) for i, chunk in enumerate(chunks) for origin, _, n in located(chunk, samples)]
    owner = []
    for a, b in words:
        holders = [
            (i, min(b, origin + n) - max(a, origin)) for i, origin, n in placed if min(b, origin + n) > max(a, origin)
        ]
        assert len(holders) == 1 and holders[0][1] == b - a, f"word {a / RATE:.2f}s is cut: {holders}"
        owner.append(holders[0][0])
    return owner


def test_chunks_are_cut_in_pauses_never_inside_a_word():
    samples, words = talk(200)
    chunks = list(speech_chunks(blocks_of(samples, 48_000), detector=Threshold()))
    assert len(chunks) >= 7
    assert all(c.duration <= 30.0 for c in chunks)
    assert all(c.duration >= 15.0 for c in chunks[:-1])  # cut in the second half, not early
    owner = word_chunks(chunks, words, samples)
    assert owner == sorted(owner) and set(owner) == set(range(len(chunks)))
    assert all(a.end <= b.offset + 1e-9 for a, b in itertools.pairwise(chunks))  # in order, no overlap


def test_the_cut_prefers_a_pause_between_phrases():
    """Phrases end with a 0.5 s pause, words are 0.12 s apart: cuts land in the long pauses."""
    layout = [("pause", 0.3)]
    for _ in range(20):
        layout += [("word", 0.4), ("pause", 0.12)] * 5 + [("word", 0.4), ("pause", 0.5)]
    samples, words = voice(layout)
    chunks = list(speech_chunks([samples], detector=Threshold(), max_s=20))
    for chunk in chunks[:-1]:
        tail = chunk.samples[-int(0.2 * RATE) :]
        assert np.abs(tail).max() < 0.01  # ends in silence...
        after = samples[round(chunk.end * RATE) : round(chunk.end * RATE) + int(0.2 * RATE)]
        assert np.abs(after).max() < 0.01  # ...in the middle of a long pause, not a 0.12 s one
    word_chunks(chunks, words, samples)


def test_block_sizes_do_not_change_the_chunks():
    samples, _ = talk(75, seed=3)
    reference = list(speech_chunks([samples], detector=Threshold()))
    for size in (FRAME, 1000, 7_777, 160_000):
        detector = Threshold()
        chunks = list(speech_chunks(blocks_of(samples, size), detector=detector))
        assert [(c.offset, c.gaps) for c in chunks] == [(c.offset, c.gaps) for c in reference]
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(chunks, reference))
        assert detector.fed == len(samples) + (-len(samples)) % FRAME  # every sample once, last frame padded


def test_long_pauses_are_shortened_and_times_map_back():
    samples, words = voice(
        [("pause", 3.0), ("word", 0.5), ("pause", 5.0), ("word", 0.5), ("pause", 0.3), ("word", 0.5), ("pause", 10.0)]
    )
    (chunk,) = speech_chunks([samples], detector=Threshold())
    # 0.4 s of silence kept before, after and on each side of the 5 s pause (to frame precision).
    assert chunk.offset == pytest.approx(2.6, abs=FRAME / RATE)
    assert chunk.duration == pytest.approx(0.4 + 0.5 + 0.8 + 0.5 + 0.3 + 0.5 + 0.4, abs=3 * FRAME / RATE)
    ((position, removed),) = chunk.gaps
    assert removed == pytest.approx(5.0 - 0.8, abs=2 * FRAME / RATE)
    assert chunk.time(position) > chunk.time(position, end=True)
    assert chunk.end == pytest.approx(3.0 + 0.5 + 5.0 + 0.5 + 0.3 + 0.5 + 0.4, abs=2 * FRAME / RATE)
    word_chunks([chunk], words, samples)
    second_word = words[1][0] / RATE
    inside = chunk.duration - (chunk.end - second_word)  # where the second word sits in the samples
    assert chunk.time(inside) == pytest.approx(second_word, abs=1e-6)


def test_no_speech_no_chunks():
    quiet = np.random.default_rng(1).normal(0, 0.001, 90 * RATE).astype(np.float32)
    assert list(speech_chunks(blocks_of(quiet, 10_000), detector=Threshold())) == []
    assert list(speech_chunks([], detector=Threshold())) == []
    assert list(speech_chunks([np.zeros(100, np.float32)], detector=Threshold())) == []


def test_speech_to_the_last_sample_keeps_the_partial_frame():
    samples, words = voice([("pause", 0.5), ("word", 1.0)])
    samples = samples[: len(samples) - 123]  # not a whole number of frames
    (chunk,) = speech_chunks(blocks_of(samples, 3000), detector=Threshold())
    assert chunk.end == pytest.approx(len(samples) / RATE)
    np.testing.assert_array_equal(chunk.samples, samples[round(chunk.offset * RATE) :])


def test_speech_without_pauses_is_cut_at_the_limit():
    tone = voice([("word", 75.0)])[0]
    chunks = list(speech_chunks([tone], detector=Threshold(), max_s=30))
    assert [round(c.duration) for c in chunks] == [30, 30, 15]
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), tone)


def test_first_chunk_ends_at_the_first_pause_after_first_s():
    samples, words = talk(60, seed=5)
    chunks = list(speech_chunks([samples], detector=Threshold(), first_s=2.0))
    assert 2.0 <= chunks[0].duration <= 6.0  # the first phrase ending after 2 s
    assert all(c.duration > 10 for c in chunks[1:-1])  # the others are full size
    word_chunks(chunks, words, samples)


def test_keep_silence_tiles_the_whole_recording():
    samples, words = voice([("pause", 4.0), ("word", 0.5), ("pause", 40.0), ("word", 0.5), ("pause", 2.0)])
    chunks = list(speech_chunks(blocks_of(samples, 5000), detector=Threshold(), keep_silence=True))
    assert chunks[0].offset == 0 and all(not c.gaps for c in chunks)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)
    assert all(c.duration <= 30 for c in chunks)
    word_chunks(chunks, words, samples)


def test_memory_is_bounded_by_one_chunk_not_the_recording():
    """An hour of talk, produced block by block: the chunker never holds more than ~one chunk."""
    phrase, _ = talk(20, seed=7)

    def hour():
        for _ in range(180):
            for block in blocks_of(phrase, 40_000):
                yield block.copy()

    tracemalloc.start()
    count = seconds = 0.0
    for chunk in speech_chunks(hour(), detector=Threshold()):
        count += 1
        seconds += chunk.duration
        del chunk
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds > 3400 and count >= 120
    recording = 3600 * RATE * 4
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {recording / 2**20:.0f} MiB recording"


def test_a_wrong_detector_is_reported():
    with pytest.raises(ValueError, match="probabilities"):
        list(speech_chunks([np.zeros(FRAME * 4, np.float32)], detector=lambda frames: np.zeros(1)))


def test_chunk_time_mapping():
    chunk = Chunk(offset=12.0, samples=np.zeros(RATE * 5, np.float32), gaps=((2.0, 3.5),))
    assert (chunk.duration, chunk.end) == (5.0, 20.5)
    assert chunk.time(1.0) == 13.0 and chunk.time(3.0) == 18.5
    assert chunk.time(2.0) == 17.5 and chunk.time(2.0, end=True) == 14.0


def test_chunks_come_while_the_input_is_still_being_read():
    samples, _ = talk(300, seed=2)
    read = []

    def blocks():
        for i, block in enumerate(blocks_of(samples, RATE)):  # one second at a time
            read.append(i)
            yield block

    stream = speech_chunks(blocks(), detector=Threshold(), first_s=2.0)
    first = next(stream)
    assert first.duration < 6 and len(read) <= 8  # the first phrase, after a few seconds of input
    second = next(stream)
    assert len(read) <= second.end + 31  # a chunk is out within one chunk length of its end
    assert sum(1 for _ in stream) >= 8 and len(read) == len(blocks_of(samples, RATE))


# The default detector: loudness over the noise floor, pure numpy (an image without a model).


def test_default_detector_hears_nothing_in_silence_and_steady_noise():
    from voicebot import audio

    from .helpers import FIXTURES

    assert list(speech_chunks(np.zeros(RATE * 5, dtype=np.float32))) == []
    for name in ("silence.ogg", "noise.ogg"):
        assert list(speech_chunks(audio.decode(FIXTURES / name))) == []


def test_default_detector_cuts_real_speech_in_its_pauses():
    from voicebot import audio

    from .helpers import FIXTURES

    samples = np.concatenate([audio.decode(FIXTURES / "long.ogg")] * 4)
    chunks = list(speech_chunks(samples, max_s=30))  # an array is one block
    assert len(chunks) >= 7 and all(c.duration <= 30 for c in chunks)
    for chunk in chunks[:-1]:  # each cut is quiet: the last 20 ms far below the chunk's loudness
        assert np.sqrt(np.mean(chunk.samples[-320:] ** 2)) < 0.1 * np.sqrt(np.mean(chunk.samples**2))
    assert 0.8 < sum(len(c.samples) for c in chunks) / len(samples) <= 1.0  # only silence is left out


def test_default_detector_cuts_pause_free_speech_where_it_is_quietest():
    t = np.arange(RATE * 70) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    chunks = list(speech_chunks(np.concatenate([np.zeros(RATE * 10, np.float32), tone]), max_s=30))
    assert len(chunks) >= 3 and abs(sum(len(c.samples) for c in chunks) - len(tone)) < RATE
    for chunk in chunks[:-1]:  # where the envelope is low, not at an arbitrary 30 s
        assert np.sqrt(np.mean(chunk.samples[-320:] ** 2)) < 0.6 * np.sqrt(np.mean(chunk.samples**2))
