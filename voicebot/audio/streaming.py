"""Streaming: speech chunks as they are cut, while the recording is still being decoded.

faster-whisper's ``transcribe()`` decodes the whole file, runs VAD over all of it and only then
transcribes. Here the chunker (:mod:`.chunking`) cuts speech as it is decoded, a thread runs
decoding and VAD ahead of the model (:func:`prefetched`), and :class:`SpeechStream` hands the
chunks on in order, holding only what was pulled and not yet handed out.

Example::

    stream = SpeechStream(prefetched(speech_chunks(recording, detector=silero_detector())))
    for chunk in stream.chunks():
        print(f"{chunk.offset:.2f}s", some_engine(chunk.samples))
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

from .chunking import SAMPLE_RATE, Chunk

WINDOW = 30 * SAMPLE_RATE  # Whisper's input: 30 s
T = TypeVar("T")


class SpeechStream:
    """Speech chunks end to end, the pauses between them left out, as faster-whisper's VAD
    filter joins them; chunks are pulled only as far as asked.

    Example::

        stream = SpeechStream(chunks)
        stream.fill(WINDOW)                        # pulls chunks until 30 s are there (or the end)
        samples = stream.read(0, min(WINDOW, stream.length))   # e.g. to detect the language
        for chunk in stream.chunks(): ...          # those pulled, then the rest as they come
    """

    def __init__(self, chunks: Iterable[Chunk]):
        self._chunks = iter(chunks)
        self._held: deque[tuple[int, Chunk]] = deque()  # (position in the stream, chunk)
        self.length = 0  # samples pulled so far
        self.done = False
        self.first: Chunk | None = None

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
                    self.first = chunk

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` of the stream (pulled, and not handed out yet)."""
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
