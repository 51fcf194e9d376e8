"""The speech-engine interface, shared by every engine. Imports no engine library and no engine.

:class:`Transcriber` is what the rest of voicebot sees. Engines: the local one
(:mod:`voicebot.engine.local`, faster-whisper) and the remote one (:mod:`voicebot.engine.remote`:
OpenAI-compatible or Wyoming servers); :mod:`voicebot.engine.loader` is the one module that
picks between them. An image built without the local engine still has this module, so the
bot runs with a remote one.

Example::

    engine = load_engine(settings)          # voicebot.engine.loader: whichever WHISPER_ENGINE names
    result = engine.transcribe(samples, prefer="uk", on_segment=print)
    print(result.language, result.text)
"""

from __future__ import annotations

import abc
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from loguru import logger

from voicebot import metrics
from voicebot.audio import SAMPLE_RATE
from voicebot.errors import TranscriptionError

# Whisper's own thresholds (openai/whisper transcribe.py). A segment with a high
# no-speech probability is dropped even when the decoder was confident, because on
# noise the decoder is confidently wrong ("Thank you.", "Subtitles by…").
NO_SPEECH_DROP = 0.6
COMPRESSION_RATIO_DROP = 2.4  # gzip ratio above this: a repetition loop, not speech


@dataclass(frozen=True)
class Segment:
    """One recognised stretch of speech, times in seconds from the start."""

    start: float
    end: float
    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0


@dataclass(frozen=True)
class StreamInfo:
    """Known before the first segment: the language and the audio's length.

    ``language_probability`` is 0.0 when the engine does not say (most servers):
    such a detection counts as unsure (see :func:`choose_language`).
    """

    language: str
    language_probability: float
    duration: float


@dataclass(frozen=True)
class Transcription:
    """A finished transcript. ``text`` is empty when no speech was found."""

    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]

    @property
    def no_speech(self) -> bool:
        return not self.text


@dataclass(frozen=True)
class EndpointStatus:
    """One transcription server as ``.status`` and ``doctor`` show it."""

    name: str  # host:port/path, never credentials
    state: str  # "ok", "busy", "down", "rate-limited" or "unknown"
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    detail: str = ""  # the last error, or when it is tried again


# What an engine transcribes: samples, or blocks of them as they are decoded (an
# audio.Recording, read once). Both are 16 kHz mono float32.
Audio = np.ndarray | Iterable[np.ndarray]


class Transcriber(abc.ABC):
    """A speech engine with its model loaded once. Thread-safe: jobs call it from workers."""

    #: what the engine really runs on ("cpu", "cuda", or "remote"), after any fallback
    device: str = "cpu"
    #: what was loaded, for logs and status
    model_name: str = ""
    #: False when audio is sent to other machines
    local: bool = True
    #: stream() takes blocks as they are decoded; otherwise transcribe() gathers them first
    reads_blocks: bool = False

    @abc.abstractmethod
    def stream(self, samples: Audio, language: str | None = None) -> tuple[StreamInfo, Iterator[Segment]]:
        """Start transcribing ``samples`` (an array, or blocks as they are decoded); segments
        come lazily, with times from the start of the recording.

        Example::

            info, segments = engine.stream(audio.open_recording("voice.ogg"))
            for segment in segments:
                print(f"[{segment.start:.1f}s] {segment.text}")
        """

    def stream_choosing(
        self,
        samples: Audio,
        language: str | None = None,
        *,
        prefer: str | None = None,
        languages: Sequence[str] = (),
        vocabulary: Sequence[str] = (),
    ) -> tuple[StreamInfo, Iterator[Segment]]:
        """:meth:`stream`, in the chat's pinned language ``prefer`` when detection is unsure
        between confusable languages (see :func:`choose_language`), and inside ``languages``
        when a set is given (see :func:`choose_in_set`). ``vocabulary``: names and terms to
        bias recognition toward, most specific first (:func:`prompt_text`); an engine that
        cannot use it ignores it.

        This default streams again in the chosen language, so it reads blocks into one
        array first. An engine that settles the language before transcribing (the local
        one), or per chunk (the remote one), overrides it and reads its input once.

        Example::

            info, segments = engine.stream_choosing(samples, prefer="uk", languages=("ru", "uk"))
        """
        if language is not None or not (prefer or languages):
            return self.stream(samples, language)
        if not isinstance(samples, np.ndarray):
            samples = gather(samples)
        info, segments = self.stream(samples, None)
        chosen, _ = choose_in_set(info.language, info.language_probability, languages, prefer)
        if chosen == info.language:
            return info, segments
        logger.debug("detected {} ({:.2f}); using {}", info.language, info.language_probability, chosen)
        _close(segments)
        return self.stream(samples, chosen)

    def transcribe(
        self,
        samples: Audio,
        language: str | None = None,
        *,
        prefer: str | None = None,
        languages: Sequence[str] = (),
        vocabulary: Sequence[str] = (),
        on_segment: Callable[[Segment], None] | None = None,
    ) -> Transcription:
        """Transcribe ``samples`` to the end.

        ``language`` forces a language. Without it the language is detected, inside
        ``languages`` when that set is not empty, and ``prefer`` (a chat's pinned language)
        wins when detection is unsure between confusable languages (see
        :func:`choose_in_set`). ``vocabulary`` biases recognition toward those names and
        terms. ``on_segment`` is called with each segment as it is recognised, for live
        progress; an exception it raises (shutdown) stops the transcription and closes the input.

        Example::

            result = engine.transcribe(audio.open_recording("voice.ogg"), prefer="uk", on_segment=print)
            result.no_speech   # True for silence or noise
        """
        source = samples if self.reads_blocks or isinstance(samples, np.ndarray) else gather(samples)
        info, segments = self.stream_choosing(
            source, language, prefer=prefer, languages=tuple(languages), vocabulary=tuple(vocabulary)
        )
        kept = []
        try:
            for segment in segments:
                kept.append(segment)
                if on_segment:
                    on_segment(segment)
        finally:
            _close(segments)
        result = Transcription(
            text=" ".join(s.text for s in kept if s.text).strip(),
            language=info.language,
            language_probability=info.language_probability,
            duration=duration_of(samples) or info.duration,
            segments=tuple(kept),
        )
        if result.no_speech:
            metrics.guard("silence")
        return result

    def concurrency(self) -> int:
        """Jobs worth running at once: 1 on CPU (they would only share cores), 2 on CUDA."""
        return 2 if self.device == "cuda" else 1

    def endpoints(self) -> list[EndpointStatus]:
        """The servers behind this engine; empty for the local engine."""
        return []

    #: :meth:`translate` works: a multilingual Whisper run here (``.tr en`` without an LLM)
    can_translate: bool = False

    def translate(self, samples: Audio) -> str:
        """The speech in ``samples`` as English text, by Whisper's own ``task="translate"``."""
        raise TranscriptionError(f"{self.model_name or 'this engine'} cannot translate")


def gather(blocks: Iterable[np.ndarray]) -> np.ndarray:
    """Blocks of samples as one array (for engines that need the whole recording)."""
    arrays = list(blocks)
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.float32)


def duration_of(samples: Audio) -> float | None:
    """Seconds of ``samples``: an array's length, or what a recording knows (exact once read)."""
    if isinstance(samples, np.ndarray):
        return len(samples) / SAMPLE_RATE
    return getattr(samples, "duration", None)


def _close(iterator: object) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: UTF-8 length over zlib-compressed length.

    Example::

        compression_ratio("hello world")          # about 0.6
        compression_ratio("thank you " * 40)      # far above 2.4: a loop
    """
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def hallucinated(segment: Segment) -> bool:
    """Whisper's no-speech and repetition-loop signals say this segment is not speech."""
    return hallucination(segment) is not None


def hallucination(segment: Segment, *, sure_of_speech: bool = False) -> str | None:
    """Which guard drops ``segment``: ``"compression_ratio"`` (a repetition loop),
    ``"no_speech_prob"`` (Whisper hears no speech; not when ``sure_of_speech``), or None.
    The names are those of ``voicebot_guard_hits_total``."""
    if segment.compression_ratio > COMPRESSION_RATIO_DROP:
        return "compression_ratio"
    if segment.no_speech_prob > NO_SPEECH_DROP and not sure_of_speech:
        return "no_speech_prob"
    return None


# Languages Whisper's detector mixes up; within a group a pinned language beats an unsure guess.
CONFUSABLE = (
    {"uk", "ru", "be", "bg"},
    {"es", "pt", "gl", "ca"},
    {"hr", "sr", "bs", "sl"},
    {"no", "nn", "da", "sv"},
    {"cs", "sk"},
    {"id", "ms", "jw", "su"},
    {"hi", "ur"},
    {"zh", "yue"},
    {"nl", "af"},
)
UNSURE_BELOW = 0.8
# Whisper's prompt holds 224 tokens (max_length // 2 - 1); the vocabulary keeps a margin below it.
BUDGET_TOKENS = 200


def choose_language(detected: str, probability: float, pinned: str | None) -> str:
    """The language to transcribe in, given detection and a chat's pinned language.

    A confident detection is kept (a Russian chat may still get an English voice);
    an unsure one inside the pinned language's confusable group yields the pinned one.
    An engine that reports no probability passes 0.0: unsure.

    Example::

        choose_language("ru", 0.55, "uk")   # 'uk'
        choose_language("en", 0.97, "uk")   # 'en'
    """
    if not pinned or detected == pinned or probability >= UNSURE_BELOW:
        return detected
    if any(detected in group and pinned in group for group in CONFUSABLE):
        return pinned
    return detected


def choose_in_set(
    detected: str,
    probability: float,
    languages: Sequence[str],
    pinned: str | None,
    probabilities: Mapping[str, float] | None = None,
) -> tuple[str, float]:
    """The language to transcribe in, and its probability, when detection must stay inside
    ``languages`` (empty: any language, :func:`choose_language` alone).

    With the detector's ``probabilities`` of every language (the local engine), the most
    probable language of the set wins, with its own probability. Without them (servers
    report one language), a detection outside the set yields the chat's ``pinned`` language
    if it is in the set, else the set's first one, with probability 0.0. Then, inside the set,
    an unsure detection confusable with ``pinned`` yields ``pinned`` (:func:`choose_language`).

    Example::

        choose_in_set("de", 0.6, ("ru", "en"), None, {"de": 0.6, "en": 0.3, "ru": 0.1})  # ('en', 0.3)
        choose_in_set("de", 0.0, ("ru", "en"), "en")                                   # ('en', 0.0)
    """
    if languages and detected not in languages:
        if probabilities:
            detected = max(languages, key=lambda code: probabilities.get(code, 0.0))
            probability = probabilities.get(detected, 0.0)
        else:
            detected = pinned if pinned in languages else languages[0]
            probability = 0.0
    chosen = choose_language(detected, probability, pinned if not languages or pinned in languages else None)
    return chosen, (probability if chosen == detected else 1.0)


def prompt_text(vocabulary: Sequence[str]) -> str:
    """The vocabulary as Whisper's prompt: the terms, comma-separated (faster-whisper's
    ``hotwords``, the OpenAI API's ``prompt``).

    Example::

        prompt_text(["Siobhan", "Llandudno"])   # 'Siobhan, Llandudno'
    """
    return ", ".join(term.strip() for term in vocabulary if term.strip())


def cost(term: str) -> int:
    """A term's estimated tokens: its characters / 4, rounded up, plus one for the comma
    (Whisper's BPE averages about 4 characters of English a token; names cost more, so the
    budget keeps a margin below the prompt's 224).

    Example::

        cost("Llandudno")   # 4
    """
    return -(-len(term) // 4) + 1


def clean(name: str) -> str:
    """A display name without emoji, symbols or control characters, spaces squeezed.

    Example::

        clean("Alice 🌸 Smith")   # 'Alice Smith'
    """
    kept = "".join(c for c in name if not unicodedata.category(c).startswith(("S", "C")))
    return " ".join(kept.split())


def budgeted(*groups: Iterable[str], budget: int = BUDGET_TOKENS) -> tuple[str, ...]:
    """The terms of ``groups``, in order, each once (any case), while they fit in ``budget``
    tokens. A term that does not fit is skipped; a shorter one after it may still fit.

    Example::

        budgeted(["Anna", "anna"], ["Bob"], budget=4)   # ('Anna', 'Bob')
    """
    seen: set[str] = set()
    kept: list[str] = []
    left = budget
    for group in groups:
        for term in group:
            term = clean(term)
            key = term.casefold()
            if not term or key in seen or cost(term) > left:
                continue
            seen.add(key)
            kept.append(term)
            left -= cost(term)
    return tuple(kept)
