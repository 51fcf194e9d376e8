"""Streaming: Whisper's 30 s windows over speech chunks as they arrive, times mapped back.

faster-whisper's ``transcribe()`` decodes the whole file, runs VAD over all of it, joins the
speech and only then slides its 30 s window over the joined speech. This module slides the
same window over the same joined speech while it is still being decoded: a window starts
as soon as the chunks for it exist (:class:`SpeechStream`), and each window's segments come
out before the next window is read (:func:`windows`). The engine-specific part, decoding
one window, is a callback; :mod:`voicebot.engine.local.whisper` passes faster-whisper's.

Memory: the chunks from the current window's start to its end, plus the chunker's one
chunk, whatever the length of the recording.

Example::

    stream = SpeechStream(speech_chunks(recording, detector=silero_detector()))
    for start, end, text in windows(stream, decode_one_window):
        print(f"[{start:.2f} → {end:.2f}] {text}")
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from .chunking import SAMPLE_RATE, Chunk

WINDOW = 30 * SAMPLE_RATE  # Whisper's input: 30 s
CONTEXT = 480  # samples of speech on each side of a window (3 spectrogram hops, more than half an FFT)
# A segment boundary this close to a left-out pause is taken to be at the pause: the
# chunker's 0.4 s of silence kept around speech, plus 0.2 s of Whisper's timestamp slack
# (less than a word). Without it, "Hello." before a 40 s pause ended 40 s late.
SNAP_S = 0.6
T = TypeVar("T")

# What decoding one window gives: (start, end, payload) per segment, in seconds from the
# window's start, and how many samples the window consumed (Whisper's seek step).
Decoded = tuple[list[tuple[float, float, T]], int]


class SpeechStream:
    """Speech chunks end to end, the pauses between them left out, as faster-whisper's VAD
    filter joins them. Read by sample position; chunks are pulled only as far as asked.

    Example::

        stream = SpeechStream(chunks)
        stream.fill(WINDOW)                        # pulls chunks until 30 s are there (or the end)
        samples = stream.read(0, min(WINDOW, stream.length))
        stream.time(12.5)                          # 12.5 s into the speech → seconds into the recording
        stream.release(16_000 * 10)                # the reader is past 10 s: drop what lies before
    """

    def __init__(self, chunks: Iterable[Chunk], *, snap_s: float = SNAP_S):
        self._chunks = iter(chunks)
        self.snap = snap_s
        self._held: deque[tuple[int, Chunk]] = deque()  # (position in the stream, chunk)
        self.length = 0  # samples pulled so far
        self.done = False
        self.first: Chunk | None = None
        self.first_end: int | None = None  # where the first chunk ends: a quick first window stops there

    def fill(self, upto: int) -> None:
        """Pull chunks until ``upto`` samples are available or the chunks run out."""
        while not self.done and self.length < upto:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.done = True
            elif len(chunk.samples):
                self._held.append((self.length, chunk))
                self.length += len(chunk.samples)
                if self.first is None:
                    self.first, self.first_end = chunk, self.length

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` of the stream (must be pulled and not released)."""
        if end > self.length or (start < end and (not self._held or start < self._held[0][0])):
            raise ValueError(
                f"samples {start}–{end} are not held (held: from "
                f"{self._held[0][0] if self._held else self.length} to {self.length})"
            )
        parts = [
            chunk.samples[max(0, start - at) : end - at]
            for at, chunk in self._held
            if at < end and at + len(chunk.samples) > start
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def time(self, seconds: float, *, end: bool = False) -> float:
        """The recording's time of a point ``seconds`` into the stream.

        At a joint between two chunks, a start belongs to the later chunk and an ``end``
        to the earlier one, and so do points within ``snap_s`` either side of a joint or gap
        (see :data:`SNAP_S`): a segment ends before a pause and starts after it. Points past what
        was pulled map to the last chunk's end.
        """
        position = seconds * SAMPLE_RATE
        snap = self.snap * SAMPLE_RATE
        held = list(self._held)
        for i, (at, chunk) in enumerate(held):
            inside, length = position - at, len(chunk.samples)
            if end and i and 0 <= inside <= snap:
                return held[i - 1][1].end  # in the lead-in of this chunk: the speech ended in the last one
            if not end and i + 1 < len(held) and length - snap <= inside < length:
                return held[i + 1][1].offset  # in this chunk's trailing silence: it starts in the next
            if inside < length or (end and inside == length):
                return chunk.time(max(0.0, inside) / SAMPLE_RATE, end=end, snap=self.snap)
        if not held:
            return seconds
        return held[-1][1].end

    def chunks(self) -> Iterator[Chunk]:
        """The chunks themselves, in order: those pulled already, then the rest as they come.
        Each is released as it is handed out."""
        while True:
            if not self._held:
                self.fill(self.length + 1)
                if not self._held:
                    return
            yield self._held.popleft()[1]

    def close(self) -> None:
        """Stop reading: close the chunks' source (and so the recording)."""
        self._held.clear()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def release(self, before: int) -> None:
        """Drop the chunks that end at or before sample ``before``."""
        while self._held and self._held[0][0] + len(self._held[0][1].samples) <= before:
            self._held.popleft()


def windows(
    stream: SpeechStream, decode: Callable[[np.ndarray, int, int], Decoded[T]], *, quick_first: bool = False
) -> Iterator[tuple[float, float, T]]:
    """Run ``decode`` on each 30 s window of ``stream``, as soon as the window's chunks exist.

    ``decode(audio, start, stop)``: ``audio[start:stop]`` is the window; around it are up to
    :data:`CONTEXT` samples of the speech before and after, so a spectrogram's edge frames
    come out as they would from the whole speech. It returns the window's segments (times
    relative to ``start``) and how far it got, as Whisper's seek does: to the end of the last
    complete segment, so a sentence the window cut off is decoded again, whole, in the next.

    ``quick_first``: the first window is the first chunk alone (cut in a pause), so the
    first words need only that much audio and a short decode.

    Yields ``(start, end, payload)`` with times in seconds into the recording.

    Example::

        for start, end, text in windows(stream, decode_one_window, quick_first=True):
            print(f"{start:.2f}s {text}")
    """
    seek = 0
    first = True
    while True:
        limit = seek + WINDOW
        if first and quick_first:
            stream.fill(1)
            limit = min(limit, stream.first_end or limit)
        # The context after a window is a few ms of speech; the quick first window ends in a
        # pause and does not wait for the next chunk to be cut for it.
        stream.fill(limit if first and quick_first else limit + CONTEXT)
        first = False
        end = min(limit, stream.length)
        if end <= seek:
            return
        before = min(CONTEXT, seek)
        audio = stream.read(seek - before, min(end + CONTEXT, stream.length))
        found, advance = decode(audio, before, before + end - seek)
        base, length = seek / SAMPLE_RATE, (end - seek) / SAMPLE_RATE
        for start, stop, payload in found:
            begin = stream.time(base + min(start, length))
            yield begin, max(begin, stream.time(base + min(stop, length), end=True)), payload
        seek += advance if 0 < advance <= end - seek else end - seek  # never stuck, never past
        stream.release(seek - CONTEXT)


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced ahead by a thread, at most ``depth`` waiting.

    Decoding and VAD (PyAV and ONNX Runtime release the GIL) then run beside the model
    instead of between its windows. An exception in the producer is raised here, in
    order; closing this iterator (or dropping it) stops and closes the producer.

    Example::

        chunks = prefetched(speech_chunks(recording, detector=silero_detector()))
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put((_DONE, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a blocked put() see the stop
            try:
                ready.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
