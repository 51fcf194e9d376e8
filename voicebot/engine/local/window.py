"""One Whisper window through faster-whisper: its spectrogram, the encoder, the decoder.

A window is at most 30 s of speech: a chunk the chunker cut in pauses. Its text is decoded
in one pass and its words are timed by cross-attention: the encoder's output serves both
(and language detection before them).

Example::

    loudest = [-np.inf]
    encoded = encode(model, chunk.samples, loudest)
    decoded = decode(model, encoded, tokenizer, options, prompt)
    timed = words(model, tokenizer, encoded, decoded.tokens) if decoded else []
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions
from loguru import logger

from voicebot import metrics
from voicebot.audio import SAMPLE_RATE
from voicebot.audio.chunking import Chunk
from voicebot.engine.base import COMPRESSION_RATIO_DROP, Segment

SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
# A decoder in a loop: more words a second than anyone says, or four words over and over.
MAX_WORDS_PER_S = 5.0
MAX_REPEATS = 4
# A segment boundary this close to a pause taken out is taken to be at the pause: the
# chunker's 0.4 s of silence kept around speech, plus 0.2 s of timing slack (less than a
# word). Without it, "Hello." before a 40 s pause ended 40 s late.
SNAP_S = 0.6


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A window through the encoder: ``size`` spectrogram frames of ``length`` samples."""

    size: int
    output: object  # CTranslate2's StorageView; None for a window too short for one frame
    length: int


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A window's text and what the hallucination guards judge it by (``compression_ratio``:
    as :func:`repetition` judges it)."""

    tokens: list[int]
    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


@dataclasses.dataclass(frozen=True)
class Word:
    text: str  # with its leading space, as Whisper writes it
    start: float
    end: float


def encode(model: WhisperModel, audio: np.ndarray, loudest: list[float]) -> Encoded:
    """The encoder's output for ``audio`` (at most 30 s are heard).

    faster-whisper floors the log-mel spectrogram at its maximum - 8 over the whole speech;
    a window alone has a lower maximum. ``loudest`` (the maximum heard so far, updated here)
    gets closer to it, and raising a floor is exact: these features equal the whole file's
    whenever the loudest moment has been heard (normalised units: (log10 + 4) / 4, so 8 → 2).
    """
    extract = model.feature_extractor
    features = extract(audio)
    loudest[0] = max(loudest[0], float(features.max()))
    np.maximum(features, loudest[0] - 2.0, out=features)
    size = min(extract.nb_max_frames, len(audio) // extract.hop_length)
    output = model.encode(pad_or_trim(features[:, :size])) if size > 0 else None
    return Encoded(size, output, len(audio))


def decode(
    model: WhisperModel,
    encoded: Encoded,
    tokenizer: Tokenizer,
    options: TranscriptionOptions,
    prompt: list[int],
    plain: list[int] | None = None,
    *,
    vad: bool = True,
) -> Decoded | None:
    """The window's text in one pass (``options.without_timestamps``), or ``None`` for a
    silent window or one with no words.

    Without timestamp tokens Whisper reads a window to its end: with them, it often stops a
    few seconds early, and its seek decodes those seconds again in another window. The
    words' times come from :func:`words` instead.

    ``plain`` is the prompt without the hint phrases: a window of speech (``vad``: the VAD
    found it) that the hints made decode to nothing is decoded again without them. Small
    models do that: tiny.en with the sender's name as the only hint answered end-of-text at
    once on 4 of 13 windows of a 5 min voice, 35 % of its words (bench/vocab_cost.py)."""
    if encoded.output is None:
        return None
    seconds = encoded.length / SAMPLE_RATE
    # Whisper's own temperature fallback on repetition only for what repetition() calls a loop:
    # speech said twice over would otherwise go to a hot, garbled decode.
    lenient = dataclasses.replace(options, compression_ratio_threshold=None)

    def attempt(prompt: list[int]):
        result, avg_logprob, _, ratio = model.generate_with_fallback(encoded.output, prompt, tokenizer, lenient)
        judged = repetition(text_of(result.sequences_ids[0], tokenizer), ratio, seconds)
        if options.compression_ratio_threshold is not None and judged > options.compression_ratio_threshold:
            result, avg_logprob, _, ratio = model.generate_with_fallback(encoded.output, prompt, tokenizer, options)
            judged = repetition(text_of(result.sequences_ids[0], tokenizer), ratio, seconds)
        return result, avg_logprob, judged

    result, avg_logprob, ratio = attempt(prompt)
    if plain is not None and vad and not text_of(result.sequences_ids[0], tokenizer).strip():
        metrics.guard("hints_silenced")
        result, avg_logprob, ratio = attempt(plain)
    if (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and not (options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold)
    ):
        return None  # a silent window: skipped, as faster-whisper does
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    text = text_of(tokens, tokenizer)
    if not text.strip():
        return None
    return Decoded(tokens, text, result.no_speech_prob, avg_logprob, ratio)


def words(model: WhisperModel, tokenizer: Tokenizer, encoded: Encoded, tokens: list[int]) -> list[Word]:
    """Each word of ``tokens`` with its time in the window (seconds), from the decoder's
    cross-attention (faster-whisper's ``find_alignment``, what ``word_timestamps`` runs):
    one forward pass, no generation."""
    try:
        found = model.find_alignment(tokenizer, [tokens], encoded.output, encoded.size)
    except (RuntimeError, ValueError, IndexError) as exc:  # a model converted without alignment heads, say
        logger.debug("no word times for this window ({}): one segment for it", exc)
        return []
    return [Word(w["word"], float(w["start"]), float(w["end"])) for w in (found[0] if found else [])]


def repetition(text: str, ratio: float, seconds: float) -> float:
    """The compression ratio a window's ``text`` (of ``seconds``; ``ratio``: its own) is judged by.

    Whisper's test (gzip ratio over 2.4) is for a decoder stuck in a loop. Speech said again
    is repetitive too: two sentences said three times in 25 s have a ratio of 3.1, and the
    window was dropped (or decoded again, hot, into nonsense). A loop writes more words than
    the audio holds, or one phrase over and over: some four words more than
    :data:`MAX_REPEATS` times. Anything else is speech, judged at most at the threshold."""
    if ratio <= COMPRESSION_RATIO_DROP:
        return ratio
    words = re.findall(r"\w+", text.lower())
    if len(words) > MAX_WORDS_PER_S * seconds:
        return ratio
    runs = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    if runs and max(runs.values()) > MAX_REPEATS:
        return ratio
    return COMPRESSION_RATIO_DROP


def sentences(chunk: Chunk, timed: list[Word], whole: Segment) -> list[Segment]:
    """``whole`` (a chunk's text) as one segment per sentence, timed in the recording by its
    words; a pause the chunker shortened also ends a segment. ``whole`` itself when the words
    have no times."""
    if not timed:
        return [whole]
    gaps = [position for position, _ in chunk.gaps]
    found, current = [], []
    for i, word in enumerate(timed):
        current.append(word)
        after = timed[i + 1] if i + 1 < len(timed) else None
        paused = after is not None and any(
            (word.start + word.end) / 2 <= gap < (after.start + after.end) / 2 for gap in gaps
        )
        if after is not None and not any(c.isalnum() for c in after.text):
            continue  # punctuation (its own token) ends the sentence before it, wherever it was timed
        if after is None or paused or word.text.rstrip().endswith(SENTENCE_ENDS):
            text = "".join(w.text for w in current).strip()
            if text:
                begin = chunk.time(current[0].start, snap=SNAP_S)
                end = max(begin, chunk.time(current[-1].end, end=True, snap=SNAP_S))
                found.append(dataclasses.replace(whole, start=round(begin, 3), end=round(end, 3), text=text))
            current = []
    return found or [whole]


def text_of(tokens: list[int], tokenizer: Tokenizer) -> str:
    """The words of a window's tokens (timestamps and end-of-text are not words)."""
    return tokenizer.decode([t for t in tokens if t < tokenizer.eot])
