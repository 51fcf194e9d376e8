import numpy as np

from voicebot import audio
from voicebot.chunking import speech_chunks

from .helpers import FIXTURES

SR = 16_000


def test_silence_and_steady_noise_yield_nothing():
    assert list(speech_chunks(np.zeros(SR * 5, dtype=np.float32))) == []
    for name in ("silence.ogg", "noise.ogg"):
        assert list(speech_chunks(audio.decode(FIXTURES / name))) == []


def test_long_speech_is_cut_in_pauses_into_chunks_of_at_most_the_limit():
    samples = np.concatenate([audio.decode(FIXTURES / "long.ogg")] * 4)
    chunks = list(speech_chunks(samples, max_seconds=30))
    assert len(chunks) >= 7
    assert all(len(c.samples) <= 30 * SR for c in chunks)
    assert all(b.offset >= a.offset + len(a.samples) / SR - 1e-6 for a, b in zip(chunks, chunks[1:]))
    for c in chunks[:-1]:  # every cut is quiet: the chunk's last 20 ms are far below its loudness
        tail, body = c.samples[-320:], c.samples
        assert np.sqrt(np.mean(tail ** 2)) < 0.1 * np.sqrt(np.mean(body ** 2))
    covered = sum(len(c.samples) for c in chunks) / len(samples)
    assert 0.8 < covered <= 1.0  # only silence is left out


def test_speech_without_pauses_is_cut_at_its_quietest_point():
    t = np.arange(SR * 70) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    samples = np.concatenate([np.zeros(SR * 10, dtype=np.float32), tone])  # silence sets the floor
    chunks = list(speech_chunks(samples, max_seconds=30))
    assert len(chunks) >= 3 and all(len(c.samples) <= 30 * SR for c in chunks)
    assert abs(sum(len(c.samples) for c in chunks) - len(tone)) < SR  # nothing of the speech lost
    for c in chunks[:-1]:  # cut where the envelope is low, not at an arbitrary 30 s
        assert np.sqrt(np.mean(c.samples[-320:] ** 2)) < 0.6 * np.sqrt(np.mean(c.samples ** 2))
