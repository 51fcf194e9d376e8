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
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions
from loguru import logger

from voicebot import metrics
from voicebot.audio import SAMPLE_RATE
from voicebot.audio.chunking import Chunk, speech_chunks
from voicebot.audio.streaming import WINDOW, SpeechStream, prefetched, windows
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

from . import models
from .vad import silero_detector

# With the VAD on, a high no-speech probability drops a segment only below this avg log-prob.
NO_SPEECH_SURE_LOGPROB = -0.5
# A recording this long (or of unknown length) gets a quick first window: its first chunk
# alone, ending at the first pause after QUICK_FIRST_S, so the first words come early. It
# costs one more encoder pass, which a short voice would feel in its total.
QUICK_FIRST_ABOVE_S = 120.0
QUICK_FIRST_S = 3.0
PREFETCH = True  # decode and VAD in a thread beside the model (measured: 5 min voice 0.93 -> 0.83 of bare)
# On CUDA, decoding several chunks at once is where the speed of long voices is
# (faster-whisper's README). On 2 CPU cores it was not faster and delayed the first words.
CUDA_BATCH_SIZE = 8


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
    ):
        self._model = model
        self.device = device
        self.model_name = model_name
        self.beam_size = beam_size
        self.vad = vad
        self.batch_size = batch_size

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
        1 (sequential, Whisper's own sliding window) on the CPU.

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
            whisper = models.load_model(path, "cpu", compute_type, threads, workers)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {model!r} from {path}: {exc}") from exc
        return cls(whisper, device="cpu", model_name=model, beam_size=beam_size, vad=vad, batch_size=batch_size or 1)

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
        first 30 s of speech, as faster-whisper does, then the most probable one inside
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
        try:
            if language is not None:
                probability = 1.0
            elif not multilingual:
                language, probability = "en", 1.0
            else:
                detected, p, probabilities = self._detect(stream)
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
        return info, self._sequential(stream, language, quick, hotwords)

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

    def _detect(self, stream: SpeechStream) -> tuple[str, float, dict[str, float]]:
        """The detected language, its probability, and every language's (faster-whisper's
        ``all_language_probs``, from the last 30 s it looked at)."""
        stream.fill(WINDOW)
        if not stream.length:
            return "en", 0.0, {}  # no speech at all: nothing will be transcribed in any language
        try:
            language, probability, everything = self._model.detect_language(
                audio=stream.read(0, min(WINDOW, stream.length))
            )
        except RuntimeError as exc:
            raise TranscriptionError(str(exc)) from exc
        return language, probability, dict(everything or ())

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

    def _sequential(
        self, stream: SpeechStream, language: str, quick: bool, hotwords: str | None = None
    ) -> Iterator[Segment]:
        """Whisper's own sliding window (faster-whisper's ``generate_segments``), one window
        at a time over the speech as it arrives. ``hotwords`` go before every window, as
        faster-whisper's ``get_prompt`` places them (after ``<|startofprev|>``)."""
        tokenizer, options = self._setup(language, hotwords)
        prompt = self._model.get_prompt(
            tokenizer, [], without_timestamps=options.without_timestamps, prefix=None, hotwords=options.hotwords
        )
        # Without the hint phrases, for a window they silenced (see _window).
        plain = (
            self._model.get_prompt(tokenizer, [], without_timestamps=options.without_timestamps, prefix=None)
            if options.hotwords
            else None
        )
        loudest = [-np.inf]  # the spectrogram's maximum so far (see _window)

        def decode(audio: np.ndarray, start: int, stop: int):
            return self._window(audio, start, stop, loudest, tokenizer, options, prompt, plain)

        try:
            for start, end, raw in windows(stream, decode, quick_first=quick):
                segment = self._kept(start, end, *raw)
                if segment is not None:
                    yield segment
        except RuntimeError as exc:  # CTranslate2 errors surface while decoding
            raise TranscriptionError(str(exc)) from exc
        finally:
            stream.close()

    def _window(
        self,
        audio: np.ndarray,
        start: int,
        stop: int,
        loudest: list[float],
        tokenizer: Tokenizer,
        options: TranscriptionOptions,
        prompt: list[int],
        plain: list[int] | None = None,
    ):
        """One pass of faster-whisper's ``generate_segments`` loop, on ``audio[start:stop]``.

        ``plain`` is the prompt without the hint phrases: a window of speech (the VAD found it)
        that the hints made decode to nothing is decoded again without them. Small models
        do that: tiny.en with the sender's name as the only hint answered end-of-text at once
        on 4 of 13 windows of a 5 min voice, 35 % of its words (bench/vocab_cost.py)."""
        model = self._model
        extract = model.feature_extractor
        features = extract(audio)
        # faster-whisper floors the log-mel spectrogram at its maximum - 8 over the whole
        # speech; a window alone has a lower maximum. The maximum so far gets closer to it,
        # and raising a floor is exact: these features equal the whole file's whenever the
        # loudest moment has been heard (normalised units: (log10 + 4) / 4, so 8 → 2).
        loudest[0] = max(loudest[0], float(features.max()))
        np.maximum(features, loudest[0] - 2.0, out=features)
        hop = extract.hop_length
        first, size = start // hop, min(extract.nb_max_frames, (stop - start) // hop)
        if size <= 0:
            return [], stop - start
        encoder_output = model.encode(pad_or_trim(features[:, first : first + size]))
        result, avg_logprob, _, compression_ratio = model.generate_with_fallback(
            encoder_output, prompt, tokenizer, options
        )
        if plain is not None and self.vad and not _has_text(result.sequences_ids[0], tokenizer):
            metrics.guard("hints_silenced")
            result, avg_logprob, _, compression_ratio = model.generate_with_fallback(
                encoder_output, plain, tokenizer, options
            )
        if (
            options.no_speech_threshold is not None
            and result.no_speech_prob > options.no_speech_threshold
            and not (options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold)
        ):
            return [], size * hop  # a silent window: skipped whole, as faster-whisper does
        pieces, seek, _ = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=result.sequences_ids[0],
            time_offset=0.0,
            segment_size=size,
            segment_duration=size * extract.time_per_frame,
            seek=0,
        )
        found = []
        for piece in pieces:
            text = tokenizer.decode(piece["tokens"])
            if piece["start"] != piece["end"] and text.strip():
                found.append(
                    (piece["start"], piece["end"], (text, result.no_speech_prob, avg_logprob, compression_ratio))
                )
        return found, (seek if 0 < seek <= size else size) * hop

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
        """Chunks (≤ 30 s, cut in pauses) decoded ``batch_size`` at a time: faster-whisper's
        ``BatchedInferencePipeline``, fed as chunks arrive. The first chunk goes alone when
        ``quick``, so the first words do not wait for a whole batch."""
        tokenizer, options = self._setup(language, hotwords)  # generate_segment_batched reads options.hotwords
        # One pass per chunk, no seeking back: with timestamps, an unfinished last sentence
        # would be dropped, so text only, one segment per chunk (faster-whisper's batched default).
        options = dataclasses.replace(options, without_timestamps=True)
        pipeline = BatchedInferencePipeline(self._model)
        batch: list[Chunk] = []
        try:
            for chunk in stream.chunks():
                batch.append(chunk)
                if len(batch) >= self.batch_size or (quick and chunk is stream.first):
                    yield from self._batch(pipeline, batch, tokenizer, options)
                    batch = []
            if batch:
                yield from self._batch(pipeline, batch, tokenizer, options)
        except RuntimeError as exc:
            raise TranscriptionError(str(exc)) from exc
        finally:
            stream.close()

    def _batch(
        self,
        pipeline: BatchedInferencePipeline,
        batch: list[Chunk],
        tokenizer: Tokenizer,
        options: TranscriptionOptions,
    ) -> Iterator[Segment]:
        extract = self._model.feature_extractor
        features = np.stack([pad_or_trim(extract(chunk.samples)[..., :-1]) for chunk in batch])
        metadata = [{"offset": 0.0, "duration": chunk.duration, "segments": []} for chunk in batch]
        for chunk, pieces in zip(batch, pipeline.forward(features, tokenizer, metadata, options)):
            for piece in pieces:
                if piece["start"] == piece["end"] or not piece["text"].strip():
                    continue
                segment = self._kept(
                    chunk.time(min(piece["start"], chunk.duration)),
                    chunk.time(min(piece["end"], chunk.duration), end=True),
                    piece["text"],
                    piece["no_speech_prob"],
                    piece["avg_logprob"],
                    piece["compression_ratio"],
                )
                if segment is not None:
                    yield segment


def _has_text(tokens: list[int], tokenizer: Tokenizer) -> bool:
    """Whether a window's tokens hold any word (timestamps and end-of-text are not words)."""
    return bool(tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip())


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
