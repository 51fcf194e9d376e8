"""The local speech engine: faster-whisper, transcribing while the audio is decoded.

:class:`FasterWhisperTranscriber` implements :class:`voicebot.engine.Transcriber`, the
interface the rest of voicebot sees; the remote engine (:mod:`voicebot.engine.remote`) is the
other implementation, and an image without this package's libraries still runs that one.

Example::

    engine = FasterWhisperTranscriber.load("small", cache_dir=Path("data/models"))
    result = engine.transcribe(audio.open_recording("voice.ogg"))
    print(result.language, result.text)
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions
from loguru import logger

from voicebot import metrics
from voicebot.audio import SAMPLE_RATE
from voicebot.audio.chunking import Chunk, speech_chunks
from voicebot.audio.streaming import WINDOW, SpeechStream, prefetched
from voicebot.config import Settings
from voicebot.engine.base import (
    Audio,
    Segment,
    StreamInfo,
    Transcriber,
    choose_in_set,
    duration_of,
    gather,
    hallucination,
    prompt_text,
)
from voicebot.errors import ModelError, TranscriptionError

from . import models, window
from .batched import batched
from .vad import silero_detector
from .window import Encoded

# With the VAD on, a high no-speech probability drops a segment only below this avg log-prob.
NO_SPEECH_SURE_LOGPROB = -0.5
# A recording this long (or of unknown length) gets a quick first window: its first chunk
# alone, ending at the first pause after QUICK_FIRST_S, so the first words come early. It
# costs one more encoder pass, which a short voice would feel in its total. (63 s voice,
# first words after the download ÷ bare's first segment: tiny.en 1.02 without, 0.60 with.)
QUICK_FIRST_ABOVE_S = 60.0
QUICK_FIRST_S = 3.0
PREFETCH = True  # decode and VAD in a thread beside the model (measured: 5 min voice 0.93 -> 0.83 of bare)
# On CUDA, decoding several chunks at once is where the speed of long voices is
# (faster-whisper's README). On 2 CPU cores it was not faster and delayed the first words.
CUDA_BATCH_SIZE = 8
# On the CPU, chunks decoded side by side, each by its own CTranslate2 worker. A greedy decode
# keeps two cores only half busy: 8 windows took 7.1 s one at a time and 4.3 s two at a time
# (tiny.en; base 12.8 s and 9.2 s), and one alone is no slower for the second worker.
CPU_WINDOWS_AT_ONCE = 2


class FasterWhisperTranscriber(Transcriber):
    """faster-whisper (CTranslate2) on CPU or CUDA, transcribing as the audio is decoded."""

    reads_blocks = True

    def __init__(
        self,
        model: WhisperModel,
        *,
        device: str,
        model_name: str,
        beam_size: int = 5,
        vad: bool = True,
        batch_size: int = 1,
        windows_at_once: int = 1,
    ):
        self._model = model
        self.device = device
        self.model_name = model_name
        self.beam_size = beam_size
        self.vad = vad
        self.batch_size = batch_size
        self.windows_at_once = max(1, windows_at_once)  # needs as many CTranslate2 workers (num_workers)

    @classmethod
    def load(
        cls,
        model: str,
        *,
        cache_dir: Path,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        workers: int = 1,
        beam_size: int = 5,
        vad: bool = True,
        batch_size: int = 0,
    ) -> FasterWhisperTranscriber:
        """Find or download ``model`` and load it on ``device``, falling back to CPU.

        ``model`` is a name (``small``, ``large-v3``, ``turbo``…), a Hugging Face repo id,
        or a local directory holding a CTranslate2 Whisper model. Raises :class:`ModelError`.
        ``batch_size``: chunks decoded at once; 0 means :data:`CUDA_BATCH_SIZE` on CUDA and
        1 on the CPU, where :data:`CPU_WINDOWS_AT_ONCE` chunks are decoded side by side instead.

        Example::

            engine = FasterWhisperTranscriber.load("tiny", cache_dir=Path("/models"), device="cpu")
        """
        path = models.resolve_model(model, cache_dir)
        wanted = models.pick_device(device)
        if wanted == "cuda":
            try:
                whisper = models.load_model(path, "cuda", compute_type, threads, workers)
                models.warm_up(whisper)  # cuBLAS/cuDNN load lazily: a missing library shows only here
                return cls(
                    whisper,
                    device="cuda",
                    model_name=model,
                    beam_size=beam_size,
                    vad=vad,
                    batch_size=batch_size or CUDA_BATCH_SIZE,
                )
            except (RuntimeError, OSError, ValueError) as exc:
                logger.warning("CUDA is not usable ({}); falling back to CPU", str(exc).splitlines()[0])
        try:
            whisper = models.load_model(path, "cpu", compute_type, threads, max(workers, CPU_WINDOWS_AT_ONCE))
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {model!r} from {path}: {exc}") from exc
        return cls(
            whisper,
            device="cpu",
            model_name=model,
            beam_size=beam_size,
            vad=vad,
            batch_size=batch_size or 1,
            windows_at_once=CPU_WINDOWS_AT_ONCE,
        )

    def stream(self, samples: Audio, language: str | None = None) -> tuple[StreamInfo, Iterator[Segment]]:
        return self.stream_choosing(samples, language)

    def stream_choosing(
        self,
        samples: Audio,
        language: str | None = None,
        *,
        prefer: str | None = None,
        languages: Sequence[str] = (),
        vocabulary: Sequence[str] = (),
    ) -> tuple[StreamInfo, Iterator[Segment]]:
        """Decode, find speech and transcribe as one flow: the first window starts as soon as
        its speech is decoded, not after the whole file. The language (detected on the
        first chunk, see :meth:`_detect`, then the most probable one inside
        ``languages`` by the detector's probabilities) and ``prefer`` are settled before the
        first window, so the input is read once. ``vocabulary`` goes to every window as
        faster-whisper's ``hotwords``.
        """
        multilingual = self._model.model.is_multilingual
        if not multilingual and language not in (None, "en"):
            language = None  # an English-only model cannot honour another language
        duration = duration_of(samples)
        blocks = [samples] if isinstance(samples, np.ndarray) else samples
        quick = duration is None or duration >= QUICK_FIRST_ABOVE_S
        chunks = speech_chunks(
            blocks,
            detector=silero_detector(),
            max_s=30.0,
            first_s=QUICK_FIRST_S if quick else None,
            keep_silence=not self.vad,
        )
        stream = SpeechStream(prefetched(chunks) if PREFETCH else chunks)
        loudest = [-np.inf]  # the spectrogram's maximum so far (window.encode)
        first: Encoded | None = None
        try:
            if language is not None:
                probability = 1.0
            elif not multilingual:
                language, probability = "en", 1.0
            else:
                detected, p, probabilities, first = self._detect(stream, loudest, quick)
                language, probability = choose_in_set(detected, p, tuple(languages), prefer, probabilities)
                if language != detected:
                    logger.debug("detected {} ({:.2f}); using {} ({:.2f})", detected, p, language, probability)
        except BaseException:
            stream.close()
            raise
        info = StreamInfo(language, probability, duration or 0.0)
        hotwords = prompt_text(vocabulary) or None
        if self.batch_size > 1:
            return info, self._batched(stream, language, quick, hotwords)
        return info, self._chunked(stream, language, hotwords, loudest, first)

    @property
    def can_translate(self) -> bool:
        return bool(self._model.model.is_multilingual)  # tiny.en and the like know English only

    def translate(self, samples: Audio) -> str:
        """Whisper's own translation into English (``task="translate"``), for ``.tr en``
        without an LLM: the whole recording at once, with the same beam and VAD."""
        if not self.can_translate:
            return super().translate(samples)
        audio = samples if isinstance(samples, np.ndarray) else gather(samples)
        try:
            segments, _ = self._model.transcribe(
                audio, task="translate", beam_size=self.beam_size, vad_filter=self.vad, condition_on_previous_text=False
            )
            kept = [
                Segment(s.start, s.end, s.text, s.no_speech_prob, s.avg_logprob, s.compression_ratio) for s in segments
            ]
        except RuntimeError as exc:
            raise TranscriptionError(str(exc)) from exc
        return " ".join(s.text.strip() for s in kept if hallucination(s) is None).strip()

    def _detect(
        self, stream: SpeechStream, loudest: list[float], quick: bool
    ) -> tuple[str, float, dict[str, float], Encoded | None]:
        """The detected language, its probability, every language's (faster-whisper's
        ``all_language_probs``), and the encoded window they were read from.

        faster-whisper's ``transcribe()`` encodes the first 30 s of speech for this and again
        for its first window. Here the language is read off the first chunk itself (15 to 30 s
        of speech, or the whole of a shorter voice), and that encoding serves its first window
        too. A quick first chunk (a few seconds) is too short to tell: the first 30 s are read."""
        stream.fill(1)
        if stream.first is None:
            return "en", 0.0, {}, None  # no speech at all: nothing will be transcribed in any language
        if quick:
            stream.fill(WINDOW)
        audio = stream.read(0, min(WINDOW, stream.length)) if quick else stream.first.samples
        try:
            encoded = window.encode(self._model, audio, loudest)
            results = self._model.model.detect_language(encoded.output)[0]
        except RuntimeError as exc:
            raise TranscriptionError(str(exc)) from exc
        everything = [(token[2:-2], probability) for token, probability in results]  # "<|en|>" → "en"
        language, probability = everything[0]
        return language, probability, dict(everything), None if quick else encoded

    def _setup(self, language: str, hotwords: str | None = None) -> tuple[Tokenizer, TranscriptionOptions]:
        """faster-whisper's tokenizer and options, exactly as its ``transcribe()`` builds them."""
        _, info = self._model.transcribe(
            np.zeros(SAMPLE_RATE // 10, dtype=np.float32),
            language=language,
            beam_size=self.beam_size,
            vad_filter=False,
            # Feeding back the previous text is what turns one hallucination into a loop.
            condition_on_previous_text=False,
            # Hint phrases before every window (get_prompt); ignored beside a prefix, and we set none.
            hotwords=hotwords,
        )
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language=language
        )
        return tokenizer, info.transcription_options

    def _chunked(
        self,
        stream: SpeechStream,
        language: str,
        hotwords: str | None,
        loudest: list[float],
        first: Encoded | None = None,
    ) -> Iterator[Segment]:
        """Each chunk (at most 30 s, cut in pauses) is one Whisper window, decoded in one pass
        and split into sentences timed by their words (:mod:`.window`); ``windows_at_once``
        chunks are decoded at once, as soon as they are cut, and segments come out in order.

        faster-whisper's ``transcribe()`` slides its window over the joined speech and decodes
        again whatever its seek left, about a fifth of it. Here nothing ties one chunk to
        another (the previous text is never fed back), so two run side by side: on the CPU a
        greedy decode keeps two cores only half busy (:data:`CPU_WINDOWS_AT_ONCE`).
        ``hotwords`` go before every window, as faster-whisper's ``get_prompt`` places them
        (after ``<|startofprev|>``). ``first``: the first chunk, encoded already (for the language).
        """
        tokenizer, options = self._setup(language, hotwords)
        options = dataclasses.replace(options, without_timestamps=True)  # one pass per window
        prompt = self._model.get_prompt(
            tokenizer, [], without_timestamps=options.without_timestamps, prefix=None, hotwords=options.hotwords
        )
        # Without the hint phrases, for a window they silenced (window.decode).
        plain = (
            self._model.get_prompt(tokenizer, [], without_timestamps=options.without_timestamps, prefix=None)
            if options.hotwords
            else None
        )

        def transcribe(chunk: Chunk, encoded: Encoded | None) -> list[Segment]:
            if encoded is None:
                encoded = window.encode(self._model, chunk.samples, loudest)
            decoded = window.decode(self._model, encoded, tokenizer, options, prompt, plain, vad=self.vad)
            if decoded is None:
                return []
            # The guards judge the whole window (a repetition loop shows in all of it).
            whole = self._kept(
                chunk.offset,
                chunk.end,
                decoded.text,
                decoded.no_speech_prob,
                decoded.avg_logprob,
                decoded.compression_ratio,
            )
            if whole is None:
                return []
            return window.sentences(chunk, window.words(self._model, tokenizer, encoded, decoded.tokens), whole)

        pool = ThreadPoolExecutor(self.windows_at_once, thread_name_prefix="whisper")
        running: deque[Future[list[Segment]]] = deque()
        try:
            for chunk in stream.chunks():
                running.append(pool.submit(transcribe, chunk, first if chunk is stream.first else None))
                while running and (len(running) >= self.windows_at_once or running[0].done()):
                    yield from running.popleft().result()
            while running:
                yield from running.popleft().result()
        except RuntimeError as exc:  # CTranslate2 errors surface while decoding
            raise TranscriptionError(str(exc)) from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a window under way ends; none starts
            stream.close()

    def _kept(
        self, start: float, end: float, text: str, no_speech_prob: float, avg_logprob: float, compression_ratio: float
    ) -> Segment | None:
        """A :class:`Segment`, or ``None`` for what the hallucination guards drop.

        A repetition loop is always dropped. A high no-speech probability drops a segment
        when the audio may be silence or noise (VAD off), or when the decoder was unsure
        too. Silero already judged the audio speech when the VAD is on, and on clear speech
        Whisper's no-speech probability of a window starting mid-sentence reaches 0.5–0.66
        with confident decodes (avg log-prob above -0.35; measured on 5 and 20 min voices):
        dropping those lost 25 s of speech at a time.
        """
        text = text.strip()
        unsure = not self.vad or avg_logprob < NO_SPEECH_SURE_LOGPROB
        segment = Segment(round(start, 3), round(end, 3), text, no_speech_prob, avg_logprob, compression_ratio)
        guard = hallucination(segment, sure_of_speech=not unsure) if text else None
        if guard:
            metrics.guard(guard)
        if not text or guard:
            logger.debug(
                "dropped segment {:.1f}-{:.1f}s (no_speech={:.2f}, logprob={:.2f}, ratio={:.2f})",
                start,
                end,
                no_speech_prob,
                avg_logprob,
                compression_ratio,
            )
            return None
        return segment

    def _batched(
        self, stream: SpeechStream, language: str, quick: bool, hotwords: str | None = None
    ) -> Iterator[Segment]:
        """Chunks decoded ``batch_size`` at a time (:mod:`.batched`)."""
        tokenizer, options = self._setup(language, hotwords)  # generate_segment_batched reads options.hotwords
        try:
            yield from batched(
                self._model, stream, tokenizer, options, size=self.batch_size, quick=quick, keep=self._kept
            )
        except RuntimeError as exc:
            raise TranscriptionError(str(exc)) from exc
        finally:
            stream.close()


def load_local_engine(settings: Settings, model: str | None = None) -> FasterWhisperTranscriber:
    """Load the configured model (or ``model``) once, downloading it into the cache the first time."""
    model = model or settings.whisper_model
    workers = settings.max_concurrent_jobs or (2 if models.pick_device(settings.whisper_device) == "cuda" else 1)
    started = time.monotonic()
    engine = FasterWhisperTranscriber.load(
        model,
        cache_dir=settings.model_cache_dir,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        threads=settings.whisper_threads,
        workers=workers,
        beam_size=settings.whisper_beam_size,
        vad=settings.whisper_vad,
        batch_size=settings.whisper_batch_size,
    )
    logger.info(
        "model {} loaded on {} in {:.1f}s ({})",
        model,
        engine.device,
        time.monotonic() - started,
        f"{engine.batch_size} chunks at once" if engine.batch_size > 1 else "one window at a time",
    )
    return engine
