"""Client for OpenAI-compatible transcription servers. The only module that imports ``openai``.

``POST /v1/audio/transcriptions`` with ``response_format=verbose_json`` is what OpenAI,
speaches / faster-whisper-server, whisper.cpp's server, LocalAI, vLLM and Groq answer:
segments with timings and, where the server has them, Whisper's ``no_speech_prob``,
``avg_logprob`` and ``compression_ratio``. The official client does the HTTP; retries
are the pool's business (``max_retries=0`` here), so a failing server is benched instead
of hammered.

Example::

    client = OpenAIClient("http://gpu:8000/v1", api_key="", model="Systran/faster-whisper-small",
                          timeout=60)
    heard = client.transcribe(samples, language=None)
    heard.language, [s.text for s in heard.segments]
"""

from __future__ import annotations

import email.utils
import io
import time
import wave

import numpy as np
import openai

from voicebot.audio import SAMPLE_RATE
from voicebot.engine.base import Segment, compression_ratio

from .pool import EndpointError
from .wire import Heard, language_code, pcm16

#: what the OpenAI API itself calls its Whisper model; many compatible servers accept it too
DEFAULT_MODEL = "whisper-1"


class OpenAIClient:
    """One OpenAI-compatible endpoint (``base_url`` ends where ``/audio/transcriptions`` starts)."""

    def __init__(self, base_url: str, *, api_key: str, model: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.model = model or DEFAULT_MODEL
        self.timeout = timeout
        # A key is required by the client even where the server wants none.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=0)

    def transcribe(self, samples: np.ndarray, language: str | None, prompt: str = "") -> Heard:
        """Send 16 kHz mono ``samples`` as a WAV file; raises :class:`EndpointError`.
        ``prompt``: the vocabulary, in the API's ``prompt`` field (text the model reads as
        what came before, so its names and spellings are preferred)."""
        extra: dict[str, str] = {"language": language} if language else {}
        if prompt:
            extra["prompt"] = prompt
        try:
            response = self._client.audio.transcriptions.create(
                model=self.model, file=("voice.wav", wav(samples), "audio/wav"), response_format="verbose_json", **extra
            )
        except openai.OpenAIError as exc:
            raise _endpoint_error(exc, self.timeout) from exc
        return _heard(
            response.model_dump() if hasattr(response, "model_dump") else {"text": str(response)},
            len(samples) / SAMPLE_RATE,
        )

    def ping(self, timeout: float) -> None:
        """Raise :class:`EndpointError` unless the server answers HTTP (any status under 500)."""
        try:
            self._client.with_options(timeout=timeout).models.list()
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise _endpoint_error(exc, timeout) from exc
        except openai.OpenAIError as exc:
            raise _endpoint_error(exc, timeout) from exc

    def models(self, timeout: float) -> list[str] | None:
        """The model ids ``GET /models`` lists, or ``None`` when the server has no such list."""
        try:
            return [m.id for m in self._client.with_options(timeout=timeout).models.list()]
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405):
                return None
            raise _endpoint_error(exc, timeout) from exc
        except openai.OpenAIError as exc:
            raise _endpoint_error(exc, timeout) from exc


def wav(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV: every server reads it, and it costs no encoding time."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm16(samples))
    return out.getvalue()


def _heard(data: dict, duration: float) -> Heard:
    """verbose_json → :class:`Heard`. A server that sends no segments (plain ``json``) yields
    one segment over the whole chunk; missing probabilities are left at "no signal"."""
    raw_segments = data.get("segments") or []
    if not raw_segments and (data.get("text") or "").strip():
        raw_segments = [{"start": 0.0, "end": data.get("duration") or duration, "text": data["text"]}]
    segments = []
    for s in raw_segments:
        text = (s.get("text") or "").strip()
        ratio = s.get("compression_ratio")
        segments.append(
            Segment(
                start=float(s.get("start") or 0.0),
                end=float(s.get("end") or duration),
                text=text,
                no_speech_prob=float(s.get("no_speech_prob") or 0.0),
                avg_logprob=float(s.get("avg_logprob") or 0.0),
                compression_ratio=float(ratio) if ratio is not None else compression_ratio(text),
            )
        )
    return Heard(language_code(data.get("language")), None, tuple(segments))


def _endpoint_error(exc: openai.OpenAIError, timeout: float) -> EndpointError:
    if isinstance(exc, openai.APITimeoutError):
        return EndpointError(f"no answer within {timeout:g}s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return EndpointError(f"unreachable ({type(cause).__name__}: {cause})"[:200], down=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"HTTP {status}: {_message(exc)}"
        if status == 429:
            return EndpointError(message, retry_after=retry_after(exc.response.headers))
        if status in (408, 409) or status >= 500:
            return EndpointError(message)
        return EndpointError(message, retry=False)  # 400, 401, 403, 404, 413, 415…: every try would fail
    return EndpointError(str(exc)[:200])


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body.get("detail", body))
        if isinstance(inner, dict):
            inner = inner.get("message", inner.get("error", inner))
        return str(inner)[:160]
    return (str(body) if body else exc.message)[:160]


def retry_after(headers) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3) or
    OpenAI's ``retry-after-ms``; 1 s when the server names none.

    Example::

        retry_after({"Retry-After": "3"})   # 3.0
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if _is_date(value) else None
            if when is not None:
                return max(when.timestamp() - time.time(), 0.0)
    return 1.0


def _is_date(value: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(value)
        return True
    except (TypeError, ValueError):
        return False
