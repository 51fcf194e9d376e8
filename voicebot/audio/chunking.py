"""Chunking: cut a recording, while it is being decoded, into speech chunks that end in silences.

Whisper hears 30 s at a time. A long voice is cut into chunks of at most ``max_s`` seconds,
each cut placed in a pause (never inside a word), so every chunk can be transcribed on its
own as soon as it exists: by the local model while the rest is still being decoded, or by
several remote speech servers at once.

The input is any iterable of 16 kHz mono float32 blocks (of any sizes), consumed lazily:
only the current chunk is held, never the whole recording. Memory is bounded by ``max_s``
plus one input block, whatever the length.

Speech is found by a :class:`SpeechDetector` passed in: a stateful callable giving one speech
probability per 512-sample frame. Silero VAD (what faster-whisper's ``vad_filter`` runs) is
provided by :func:`voicebot.engine.local.silero_detector`; this module imports no model
(house rule: only ``voicebot/engine/local/`` imports faster_whisper), so it works in an image
without the local engine, where the default :class:`EnergyDetector` (frame loudness
against the recording's noise floor, pure numpy) does the listening.

Like faster-whisper's ``vad_filter``, silence is dropped: before the first speech, between
chunks, and inside a chunk wherever a pause is longer than ``max_gap_s`` (it is shortened to
``2 * pad_s``). :attr:`Chunk.gaps` records what was taken out, and :meth:`Chunk.time` maps
a time inside the chunk back to the recording.

Example::

    from voicebot import audio
    from voicebot.audio import chunking
    from voicebot.engine.local import silero_detector

    blocks = [audio.decode("voice.ogg")]     # or any iterable of blocks, decoded as they come
    for chunk in chunking.speech_chunks(blocks, detector=silero_detector()):
        text = some_engine(chunk.samples)     # times relative to the chunk...
        print(f"{chunk.offset:.2f}s–{chunk.end:.2f}s", text)   # ...and where it is in the voice

    # Longer chunks for a server that takes them, and no model at hand (energy detector):
    chunks = speech_chunks(samples, max_s=120)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 512  # samples per detector frame (32 ms): Silero VAD's window at 16 kHz
FRAME_S = FRAME / SAMPLE_RATE


class SpeechDetector(Protocol):
    """Voice activity detection over consecutive frames of one recording.

    Called with 16 kHz float32 samples whose length is a multiple of :data:`FRAME`; returns
    one speech probability (0…1) per frame. Each call continues where the previous one
    ended (the detector may keep state), so use a fresh detector per recording.

    Example::

        detector = silero_detector()
        probabilities = detector(samples[: 100 * FRAME])   # shape (100,)
    """

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class EnergyDetector:
    """Speech by loudness: a frame ``ABOVE_FLOOR_DB`` over the recording's noise floor (its
    10th percentile of frame loudness so far, over at most the last 5 minutes), and above
    ``SILENCE_DB`` whatever the floor. Steady noise and silence are not speech.

    The probability grows 1/40 per dB around the threshold (0.5 at it), so where speech
    has no pause at all the quietest moment is still where a cut goes.

    Example::

        chunks = speech_chunks(samples, detector=EnergyDetector())   # the default
    """

    SILENCE_DB = -50.0
    ABOVE_FLOOR_DB = 12.0
    HISTORY = int(300 / (FRAME / SAMPLE_RATE))  # frames: 5 minutes

    def __init__(self) -> None:
        self._history = np.zeros(0, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        power = np.mean(np.square(frames.reshape(-1, FRAME), dtype=np.float64), axis=1)
        db = (10 * np.log10(power + 1e-12)).astype(np.float32)
        self._history = np.concatenate([self._history, db])[-self.HISTORY :]
        threshold = max(self.SILENCE_DB, float(np.percentile(self._history, 10)) + self.ABOVE_FLOOR_DB)
        return np.clip(0.5 + (db - threshold) / 40.0, 0.0, 1.0)


@dataclass(frozen=True)
class Chunk:
    """A stretch of speech: ``samples`` (16 kHz mono float32) start ``offset`` seconds into
    the recording.

    ``gaps``: pauses longer than ``max_gap_s`` shortened inside the chunk, as
    ``(seconds into samples, seconds removed there)``, in order. Empty for a contiguous chunk.

    Example::

        chunk = Chunk(offset=12.0, samples=np.zeros(16_000 * 5, np.float32), gaps=((2.0, 3.5),))
        chunk.duration     # 5.0 s of samples...
        chunk.end          # ...covering 12.0 s → 20.5 s of the recording
        chunk.time(1.0)    # 13.0
        chunk.time(3.0)    # 18.5: after the 3.5 s taken out at 2.0 s
        chunk.time(2.0), chunk.time(2.0, end=True)   # 17.5 (speech resumes), 14.0 (it ended)
    """

    offset: float
    samples: np.ndarray
    gaps: tuple[tuple[float, float], ...] = ()

    @property
    def duration(self) -> float:
        """Seconds of audio in ``samples``."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        """Where the chunk ends in the recording, in seconds."""
        return self.time(self.duration, end=True)

    def time(self, seconds: float, *, end: bool = False, snap: float = 0.0) -> float:
        """The recording's time of a point ``seconds`` into ``samples``.

        A point exactly at a gap is where the next speech starts; with ``end=True`` it is
        where the speech before the gap ended (use it for the end of a segment). ``snap``:
        an end this close after a gap (in the silence before the next speech), or a start
        this close before one (in the silence after the speech), is taken to be at the gap:
        a segment ending there ended before the pause, one starting there starts after it.
        """
        removed = 0.0
        for position, length in self.gaps:
            if end and position <= seconds <= position + snap:
                return self.offset + position + removed
            if not end and position - snap <= seconds <= position:
                return self.offset + position + removed + length
            if seconds < position or (end and seconds == position):
                break
            removed += length
        return self.offset + seconds + removed


def speech_chunks(
    blocks: np.ndarray | Iterable[np.ndarray],
    *,
    detector: SpeechDetector | None = None,
    max_s: float = 30.0,
    first_s: float | None = None,
    threshold: float = 0.5,
    neg_threshold: float | None = None,
    pad_s: float = 0.4,
    max_gap_s: float = 2.0,
    keep_silence: bool = False,
) -> Iterator[Chunk]:
    """Consume ``blocks`` lazily; yield speech chunks of at most ``max_s`` seconds, cut in pauses.

    * ``blocks``: 16 kHz mono float32 arrays, in order, of any lengths; or one array.
    * ``detector``: a fresh :class:`SpeechDetector` for this recording. Default: an
      :class:`EnergyDetector` (pure numpy, for images without a model); with faster-whisper
      installed, :func:`voicebot.engine.local.silero_detector` hears speech far better.
    * ``max_s``: the longest chunk. When a chunk reaches it, the cut goes in the latest
      pause of its second half, preferring pauses of 0.3 s or more to those of 0.1 s; only
      speech without any 0.1 s pause for ``max_s / 2`` seconds is cut at its quietest frame.
    * ``first_s``: end the first chunk at the first 0.3 s pause after this many seconds,
      so the first words can be ready early. ``None``: the first chunk is like the others.
    * ``threshold`` / ``neg_threshold``: a frame is speech at ``threshold`` or above, and
      stays speech down to ``neg_threshold`` (default ``threshold - 0.15``), as in Silero VAD.
    * ``pad_s``: silence kept on each side of speech (faster-whisper's ``speech_pad_ms``).
    * ``max_gap_s``: pauses longer than this are shortened to ``2 * pad_s`` (faster-whisper's
      ``min_silence_duration_ms``).
    * ``keep_silence``: keep every sample (chunks tile the recording, no gaps); the detector
      only chooses where to cut. For users who turned the VAD filter off.

    Chunks come in order, never overlap, and hold no audio twice. A recording without speech
    yields nothing (unless ``keep_silence``).

    Example::

        for chunk in speech_chunks([audio.decode("voice.ogg")], detector=silero_detector()):
            print(f"{chunk.offset:7.2f}s  {chunk.duration:5.2f}s  gaps={chunk.gaps}")
    """
    if isinstance(blocks, np.ndarray):
        blocks = [blocks]
    chunker = _Chunker(
        detector or EnergyDetector(),
        max_s=max_s,
        first_s=first_s,
        threshold=threshold,
        neg_threshold=neg_threshold,
        pad_s=pad_s,
        max_gap_s=max_gap_s,
        keep_silence=keep_silence,
    )
    pending = np.zeros(0, dtype=np.float32)
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if len(pending):
            block = np.concatenate([pending, block])
        whole = len(block) - len(block) % FRAME
        pending = block[whole:].copy()
        if whole:
            yield from chunker.feed(block[:whole])
    if len(pending):
        yield from chunker.feed(np.pad(pending, (0, FRAME - len(pending))), valid=len(pending))
    yield from chunker.finish()


_PAUSE_S = 0.1  # a cut needs at least this much silence (Silero's own split uses 98 ms)
_GOOD_PAUSE_S = 0.3  # a pause between phrases, preferred for cuts


class _Chunker:
    """Frame-by-frame state of :func:`speech_chunks`. Buffers are preallocated: memory is fixed.

    The open chunk's frames sit in ``audio``/``speech``/``prob``/``index`` (``kept`` of them).
    Silence that may precede speech waits in ``lead`` (at most ``pad`` frames).
    """

    def __init__(
        self,
        detector: SpeechDetector,
        *,
        max_s: float,
        first_s: float | None,
        threshold: float,
        neg_threshold: float | None,
        pad_s: float,
        max_gap_s: float,
        keep_silence: bool,
    ):
        if max_s < 1.0:
            raise ValueError("max_s must be at least 1 s")
        self.detector = detector
        self.max_frames = int(max_s / FRAME_S)
        self.first_frames = int(first_s / FRAME_S) if first_s is not None else None
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
        self.pad = int(round(pad_s / FRAME_S))
        self.max_gap = max(int(max_gap_s / FRAME_S), 2 * self.pad + 1)
        self.keep_silence = keep_silence
        self.pause = max(1, int(round(_PAUSE_S / FRAME_S)))
        self.good_pause = max(self.pause, int(round(_GOOD_PAUSE_S / FRAME_S)))
        capacity = self.max_frames + 1
        self.audio = np.zeros((capacity, FRAME), dtype=np.float32)
        self.speech = np.zeros(capacity, dtype=bool)
        self.prob = np.zeros(capacity, dtype=np.float32)
        self.index = np.zeros(capacity, dtype=np.int64)  # each kept frame's place in the recording
        self.kept = 0
        self.silence = 0  # silent frames at the end of the open chunk
        self.in_gap = False  # a long pause was shortened: silence goes to ``lead`` until speech
        self.lead: deque[tuple[int, np.ndarray, float]] = deque(maxlen=self.pad)
        self.speaking = False
        self.frame = 0  # the next frame's index in the recording
        self.cuts = 0
        self.last_valid = FRAME  # real samples in the recording's last frame

    def feed(self, samples: np.ndarray, valid: int = FRAME) -> Iterator[Chunk]:
        probs = np.asarray(self.detector(samples), dtype=np.float32).reshape(-1)
        frames = samples.reshape(-1, FRAME)
        if len(probs) != len(frames):
            raise ValueError(f"the detector gave {len(probs)} probabilities for {len(frames)} frames")
        self.last_valid = valid
        for frame, p in zip(frames, probs.tolist()):
            # Hysteresis, as Silero VAD's get_speech_timestamps: speech until it drops below neg_threshold.
            self.speaking = p >= self.threshold or (self.speaking and p >= self.neg_threshold)
            index = self.frame
            self.frame += 1
            if not self.speaking and (self.kept == 0 or self.in_gap) and not self.keep_silence:
                self.lead.append((index, frame.copy(), p))  # the caller may reuse its block
                continue
            yield from self._step(index, frame, p)

    def _step(self, index: int, frame: np.ndarray, p: float) -> Iterator[Chunk]:
        if self.lead:  # speech after silence: its lead-in joins the chunk first
            for lead in self.lead:
                self._append(*lead, speech=False)
            self.lead.clear()
        self.in_gap = False
        self._append(index, frame, p, speech=self.speaking)
        self.silence = 0 if self.speaking else self.silence + 1
        if not self.keep_silence and self.silence >= self.max_gap:
            self._shorten_pause()
        elif (
            self.first_frames is not None
            and self.cuts == 0
            and self.kept >= self.first_frames
            and self.silence >= self.good_pause
        ):
            yield from self._cut(self.kept - self.silence + self.silence // 2)
        elif self.kept >= self.max_frames:
            yield from self._cut(self._cut_point())

    def _append(self, index: int, frame: np.ndarray, p: float, *, speech: bool) -> None:
        k = self.kept
        self.audio[k] = frame
        self.prob[k] = p
        self.speech[k] = speech
        self.index[k] = index
        self.kept = k + 1

    def _shorten_pause(self) -> None:
        """A long pause: keep ``pad`` frames after the speech, the rest waits as lead-in.

        The chunk stays open: speech that resumes joins it after its lead-in, so sentences
        separated by long pauses still share one 30 s window, as with faster-whisper's VAD.
        """
        end = self.kept - self.silence + self.pad
        for k in range(max(end, self.kept - self.pad), self.kept):
            self.lead.append((int(self.index[k]), self.audio[k].copy(), float(self.prob[k])))
        self.kept = end
        self.silence = 0
        self.in_gap = True

    def _cut_point(self) -> int:
        """Where to end a full chunk: the middle of its latest pause in the second half."""
        lo = self.kept // 2
        runs = _silent_runs(self.speech[: self.kept])
        for least in (self.good_pause, self.pause):
            latest = [(start, end) for start, end in runs if end - start >= least and end > lo]
            if latest:
                start, end = latest[-1]
                return max(lo, (start + end) // 2)
        # Speech without any pause: its quietest frame (the latest of near-equals, for long chunks).
        probs = self.prob[lo : self.kept]
        return lo + int(np.nonzero(probs <= probs.min() + 0.05)[0][-1])

    def _cut(self, at: int) -> Iterator[Chunk]:
        at = max(1, min(at, self.kept))
        chunk = self._chunk(at)
        rest = self.kept - at
        self.audio[:rest] = self.audio[at : self.kept]  # the rest opens the next chunk
        self.prob[:rest] = self.prob[at : self.kept]
        self.speech[:rest] = self.speech[at : self.kept]
        self.index[:rest] = self.index[at : self.kept]
        self.kept = rest
        self.cuts += 1
        if not self.keep_silence and not self.speech[:rest].any():
            # Only silence after the cut: its end is the lead-in of whatever speech comes next.
            for k in range(max(0, rest - self.pad), rest):
                self.lead.append((int(self.index[k]), self.audio[k].copy(), float(self.prob[k])))
            self.kept = self.silence = 0
        if chunk is not None:
            yield chunk

    def finish(self) -> Iterator[Chunk]:
        end = self.kept if self.keep_silence else self.kept - max(0, self.silence - self.pad)
        chunk = self._chunk(end)
        self.kept = 0
        if chunk is not None:
            yield chunk

    def _chunk(self, end: int) -> Chunk | None:
        if end <= 0 or not (self.keep_silence or self.speech[:end].any()):
            return None
        samples = self.audio[:end].reshape(-1)
        if int(self.index[end - 1]) == self.frame - 1 and self.last_valid < FRAME:
            samples = samples[: len(samples) - (FRAME - self.last_valid)]  # the recording's partial last frame
        jumps = np.nonzero(np.diff(self.index[:end]) > 1)[0]
        gaps = tuple(((int(j) + 1) * FRAME_S, float(self.index[j + 1] - self.index[j] - 1) * FRAME_S) for j in jumps)
        return Chunk(offset=float(self.index[0]) * FRAME_S, samples=samples.copy(), gaps=gaps)


def _silent_runs(speech: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of non-speech frames, in order."""
    edges = np.diff(np.concatenate([[True], speech, [True]]).astype(np.int8))
    return list(zip(np.nonzero(edges == -1)[0].tolist(), np.nonzero(edges == 1)[0].tolist()))
