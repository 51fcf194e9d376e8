"""The remote engine: transcription on other machines, through existing speech servers.

:class:`RemoteTranscriber` is a :class:`~voicebot.engine.Transcriber` like the local engine;
the pipeline cannot tell them apart. It cuts the audio at silences into chunks of at most
~30 s (Whisper's own window; :mod:`voicebot.audio.chunking`), sends them in parallel over the
endpoint pool (:mod:`.pool`), and yields their segments in order as they
complete, so a long voice shows its first words after one chunk and a 20 min voice on
four servers takes about a quarter of the time. Silence between chunks is never sent.

Language: a forced language goes with every chunk. Otherwise the first chunk's detection
decides, as Whisper's does (it detects on the first 30 s), with the chat's pinned language
winning an unsure detection (:func:`~voicebot.engine.choose_language`); servers report no
probability, which counts as unsure. With a language set (``WHISPER_LANGUAGES``, ``.lang ru,en``),
a first chunk heard in a language outside it decides the chat's pinned language if that is in
the set, else the set's first one (servers give no probabilities to rank the set by). Chunks
already sent without a language and heard in another one are sent again in the decided language.
The vocabulary goes with every chunk as the OpenAI API's ``prompt``; Wyoming has no such field.

Example::

    engine = RemoteTranscriber(pool, kind="openai", model_name="small", detector=silero_detector)
    engine.transcribe(samples, prefer="uk").text
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from loguru import logger

from voicebot import metrics
from voicebot.audio import SAMPLE_RATE
from voicebot.audio.chunking import EnergyDetector, SpeechDetector, speech_chunks
from voicebot.engine.base import (
    EndpointStatus,
    Segment,
    StreamInfo,
    Transcriber,
    choose_in_set,
    hallucination,
    prompt_text,
)

from .pool import AllDown, EndpointPool
from .wire import Heard

MAX_CHUNK_S = 30.0


class RemoteTranscriber(Transcriber):
    """Whisper on the servers of an :class:`EndpointPool`.

    ``fallback``: returns the local engine (loaded on first use) for when every server is
    down; ``None`` waits for a server instead. ``detector`` makes a fresh speech detector for
    each recording (Silero where the local engine is installed; both are injected by
    :mod:`voicebot.engine.loader`, so this package never imports the local engine).
    """

    device = "remote"
    local = False

    def __init__(
        self,
        pool: EndpointPool,
        *,
        kind: str,
        model_name: str,
        fallback: Callable[[], Transcriber] | None = None,
        detector: Callable[[], SpeechDetector] = EnergyDetector,
        max_chunk_s: float = MAX_CHUNK_S,
    ):
        self.pool = pool
        self.detector = detector
        self.kind = kind
        self.model_name = model_name or "server default"
        self.fallback = fallback
        self.max_chunk_s = max_chunk_s
        self.window = len(pool.endpoints) * pool.capacity  # chunks of one voice in flight at once
        self._executor = ThreadPoolExecutor(max_workers=max(8, 4 * self.window), thread_name_prefix="voicebot-remote")

    def stream(self, samples: np.ndarray, language: str | None = None) -> tuple[StreamInfo, Iterator[Segment]]:
        return self.stream_choosing(samples, language)

    def stream_choosing(
        self,
        samples: np.ndarray,
        language: str | None = None,
        *,
        prefer: str | None = None,
        languages: Sequence[str] = (),
        vocabulary: Sequence[str] = (),
    ) -> tuple[StreamInfo, Iterator[Segment]]:
        duration = len(samples) / SAMPLE_RATE
        chunks = list(speech_chunks(samples, detector=self.detector(), max_s=self.max_chunk_s))
        if not chunks:  # nothing above the silence gate: no request at all
            return StreamInfo(language or "", 0.0, duration), iter(())
        run = _Run(self, chunks, language, prefer, tuple(languages), tuple(vocabulary))
        return StreamInfo(run.language, run.probability, duration), run.segments()

    def concurrency(self) -> int:
        """One job per server slot: a short voice each, or one long voice across all of them."""
        return self.window

    def endpoints(self) -> list[EndpointStatus]:
        return self.pool.status()

    def close(self) -> None:
        """Stop waiting for servers (shutdown)."""
        self.pool.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def heard(
        self, chunk_samples: np.ndarray, language: str | None, what: str, vocabulary: Sequence[str] = ()
    ) -> Heard:
        """One chunk through the pool, or locally when every server is down and fallback is on."""
        prompt = {"prompt": prompt_text(vocabulary)} if vocabulary else {}
        try:
            return self.pool.call(
                lambda client: client.transcribe(chunk_samples, language, **prompt),
                wait=self.fallback is None,
                what=what,
            )
        except AllDown:
            if self.fallback is None:  # a one-shot command's wait ran out: it ends here
                raise
            engine = self.fallback()
            logger.warning("{}: every server is down; transcribing locally", what)
            info, segments = engine.stream_choosing(chunk_samples, language, vocabulary=vocabulary)
            return Heard(info.language, info.language_probability, tuple(segments))


class _Run:
    """One voice's chunks in flight: at most ``window`` at once, delivered in order."""

    def __init__(
        self,
        engine: RemoteTranscriber,
        chunks: list,
        forced: str | None,
        prefer: str | None,
        languages: tuple[str, ...] = (),
        vocabulary: tuple[str, ...] = (),
    ):
        self.engine, self.chunks = engine, chunks
        self.forced, self.prefer = forced, prefer
        self.languages, self.vocabulary = languages, vocabulary
        self.decided: str | None = forced
        self.language, self.probability = forced or "", 0.0
        self.sent_with: dict[int, str | None] = {}
        self.results: list[Future] = [Future() for _ in chunks]
        self._next = 0
        self._lock = threading.Lock()
        self.abandoned = False
        # Until chunk 1 is heard, only the first window goes out (undecided); a slot freed
        # earlier (chunk 2 back first) waits here for the language.
        self._first_window = min(engine.window, len(chunks))
        self._waiting_slots = 0
        for _ in range(self._first_window):
            self._submit_next()
        try:
            first = self._result(0)
        except BaseException:
            self.abandoned = True  # the job fails: send no more of its chunks
            raise
        self.first = self._in_language(0, first)

    def _decide(self, first: Heard) -> None:
        """The voice's language, from the first chunk (in the worker thread, before the next
        chunk is sent, so only the first window of chunks can go out undecided)."""
        detected = first.language or self.forced or ""
        self.probability = first.language_probability or 0.0
        if self.forced:
            language = self.forced
        elif not detected:  # the server says no language (Wyoming): the chat's pin stands in
            language = self.prefer or ""
        else:
            language, _ = choose_in_set(detected, self.probability, self.languages, self.prefer)
            if language != detected:
                logger.debug("detected {} (p={:.2f}); using the chat's {}", detected, self.probability, language)
        with self._lock:
            self.language = language
            self.decided = language or None

    def segments(self) -> Iterator[Segment]:
        try:
            for i, chunk in enumerate(self.chunks):
                heard = self.first if i == 0 else self._in_language(i, self._result(i))
                for s in heard.segments:
                    # Chunk times → the recording's (long pauses were shortened inside a chunk).
                    start = chunk.time(min(max(s.start, 0.0), chunk.duration))
                    end = chunk.time(min(max(s.end, s.start), chunk.duration), end=True)
                    segment = Segment(start, end, s.text.strip(), s.no_speech_prob, s.avg_logprob, s.compression_ratio)
                    guard = hallucination(segment) if segment.text else None
                    if guard:
                        metrics.guard(guard)
                    if not segment.text or guard:
                        logger.debug(
                            "dropped segment {:.1f}-{:.1f}s (no_speech={:.2f}, ratio={:.2f})",
                            segment.start,
                            segment.end,
                            segment.no_speech_prob,
                            segment.compression_ratio,
                        )
                        continue
                    yield segment
        finally:
            self.abandoned = True  # shutdown or an error: send no more chunks of this voice

    def _in_language(self, i: int, heard: Heard) -> Heard:
        """A chunk sent before the language was decided and heard in another one is sent again."""
        if self.sent_with[i] is None and self.decided and heard.language != self.decided:
            logger.debug("chunk {} was heard as {}; again in {}", i + 1, heard.language, self.decided)
            return self.engine.heard(self.chunks[i].samples, self.decided, self._what(i), self.vocabulary)
        return heard

    def _submit_next(self) -> None:
        with self._lock:
            if self._next >= len(self.chunks) or self.abandoned:
                return
            if not self.results[0].done() and self._next >= self._first_window:
                self._waiting_slots += 1  # sent when chunk 1 has decided the language
                return
            i, self._next = self._next, self._next + 1
            self.sent_with[i] = language = self.decided
        self.engine._executor.submit(self._work, i, language)

    def _work(self, i: int, language: str | None) -> None:
        try:
            heard = self.engine.heard(self.chunks[i].samples, language, self._what(i), self.vocabulary)
            if i == 0:
                self._decide(heard)
            self.results[i].set_result(heard)
        except BaseException as exc:  # handed to the reader of this chunk, in order
            if i == 0:
                self.abandoned = True  # the job fails: send no more of its chunks
            self.results[i].set_exception(exc)
        slots = 1
        if i == 0:  # chunk 1 is done (under the lock: no slot is parked after this)
            with self._lock:
                slots, self._waiting_slots = 1 + self._waiting_slots, 0
        for _ in range(slots):
            self._submit_next()

    def _result(self, i: int) -> Heard:
        return self.results[i].result()

    def _what(self, i: int) -> str:
        return f"chunk {i + 1}/{len(self.chunks)}" if len(self.chunks) > 1 else "request"
