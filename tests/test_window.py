"""One window's text: split into sentences timed by its words, and judged for repetition loops."""

import numpy as np
from faster_whisper.transcribe import get_compression_ratio

from voicebot.audio.chunking import Chunk
from voicebot.engine.base import COMPRESSION_RATIO_DROP, Segment
from voicebot.engine.local.window import Word, repetition, sentences

# 12 s of samples starting 10 s into the recording, with 20 s of silence taken out 6 s in
CHUNK = Chunk(offset=10.0, samples=np.zeros(12 * 16_000, np.float32), gaps=((6.0, 20.0),))
WHOLE = Segment(10.0, 42.0, "Hello world. How are you", 0.1, -0.2, 1.3)


def test_one_segment_per_sentence_timed_by_its_words():
    words = [Word(" Hello", 0.5, 0.9), Word(" world", 1.0, 1.4), Word(".", 1.4, 1.5), Word(" How", 2.0, 2.2)]
    words += [Word(" are", 2.2, 2.4), Word(" you", 2.4, 2.8)]
    got = sentences(CHUNK, words, WHOLE)
    assert [s.text for s in got] == ["Hello world.", "How are you"]
    assert (got[0].start, got[0].end, got[1].start, got[1].end) == (10.5, 11.5, 12.0, 12.8)
    assert all(s.avg_logprob == WHOLE.avg_logprob for s in got)  # what the guards judged: the window's


def test_a_pause_taken_out_ends_a_segment_and_times_skip_it():
    words = [Word(" yes", 5.0, 5.6), Word(" then", 7.0, 7.4), Word(" no", 7.5, 7.9)]
    got = sentences(CHUNK, words, WHOLE)
    assert [s.text for s in got] == ["yes", "then no"]
    assert got[0].end == 15.6 and got[1].start == 37.0  # 7 s into the samples is 37 s in: after the gap


def test_punctuation_timed_after_a_pause_stays_with_its_sentence():
    words = [Word(" bye", 5.0, 5.6), Word(".", 6.5, 6.6), Word(" Next", 7.0, 7.4)]
    got = sentences(CHUNK, words, WHOLE)
    assert [s.text for s in got] == ["bye.", "Next"]


def test_without_word_times_the_window_is_one_segment():
    assert sentences(CHUNK, [], WHOLE) == [WHOLE]


def judged(text, seconds):
    return repetition(text, get_compression_ratio(text), seconds)


def test_speech_said_again_is_not_a_repetition_loop():
    said = " ".join(["The weather today is sunny and warm Tomorrow we expect light rain in the afternoon"] * 3)
    assert get_compression_ratio(said) > COMPRESSION_RATIO_DROP  # the window as a whole looks like a loop
    assert judged(said, seconds=25.0) <= COMPRESSION_RATIO_DROP  # 42 words in 25 s, each four-word run 3 times: kept


def test_a_loop_is_still_one():
    running_on = " ".join(["Thank you."] * 60)  # 120 words in 5 s: more than anyone says
    stuck = "So I said " + "la " * 40  # plausible length, one phrase over and over
    assert judged(running_on, seconds=5.0) > COMPRESSION_RATIO_DROP
    assert judged(stuck, seconds=25.0) > COMPRESSION_RATIO_DROP
