"""Client for Wyoming speech-to-text servers. The only module that imports ``wyoming``.

Wyoming (rhasspy's protocol, what Home Assistant's ``wyoming-faster-whisper`` add-on serves)
is JSON event lines over TCP: ``transcribe`` (model name, language), ``audio-start``,
``audio-chunk``…, ``audio-stop``; the server answers ``transcript`` with the text, and
closes the connection. It has no segments and no probabilities: each chunk the remote
engine sends comes back as one segment (see docs/scaling.md for what that means for the
hallucination guard). ``describe`` → ``info`` lists the models a server has.

Example::

    client = WyomingClient("tcp://homeassistant.local:10300", model="", timeout=60)
    client.transcribe(samples, language="en").segments[0].text
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info

from voicebot.audio import SAMPLE_RATE
from voicebot.engine.base import Segment, compression_ratio

from .pool import EndpointError
from .wire import Heard, language_code, pcm16

_CHUNK_BYTES = SAMPLE_RATE * 2  # one second of 16-bit mono per audio-chunk event


class WyomingClient:
    """One Wyoming ASR server at ``tcp://host:port``."""

    def __init__(self, url: str, *, model: str, timeout: float):
        parts = urlsplit(url)
        self.address = (parts.hostname or "", parts.port or 10300)
        self.model = model or None  # None: the server's loaded model
        self.timeout = timeout

    def transcribe(self, samples: np.ndarray, language: str | None, prompt: str = "") -> Heard:
        """Stream ``samples`` and wait for the transcript; raises :class:`EndpointError`.
        ``prompt`` is not sent: Wyoming's ``transcribe`` event has no field for it."""
        pcm = pcm16(samples)
        events = [
            Transcribe(name=self.model, language=language).event(),
            AudioStart(rate=SAMPLE_RATE, width=2, channels=1).event(),
        ]
        events += [
            AudioChunk(rate=SAMPLE_RATE, width=2, channels=1, audio=pcm[i : i + _CHUNK_BYTES]).event()
            for i in range(0, len(pcm), _CHUNK_BYTES)
        ]
        events.append(AudioStop().event())
        answer = self._exchange(events, Transcript.is_type, self.timeout)
        transcript = Transcript.from_event(answer)
        text = transcript.text.strip()
        duration = len(samples) / SAMPLE_RATE
        segments = (Segment(0.0, duration, text, compression_ratio=compression_ratio(text)),) if text else ()
        return Heard(language_code(transcript.language) or language, None, segments)

    def ping(self, timeout: float) -> None:
        """Raise :class:`EndpointError` unless the server answers ``describe``."""
        self.info(timeout)

    def models(self, timeout: float) -> list[str]:
        """Names of the speech-to-text models the server says it has installed."""
        info = self.info(timeout)
        return [m.name for program in info.asr for m in program.models if m.installed]

    def info(self, timeout: float) -> Info:
        return Info.from_event(self._exchange([Describe().event()], Info.is_type, timeout))

    def _exchange(self, events: list[Event], wanted, timeout: float) -> Event:
        """One connection: send ``events``, read until an event ``wanted`` accepts."""
        try:
            with socket.create_connection(self.address, timeout=timeout) as sock:
                sock.settimeout(timeout)
                with sock.makefile("wb") as writer, sock.makefile("rb") as reader:
                    for event in events:
                        write_event(event, writer)
                    while True:
                        event = read_event(reader)
                        if event is None:
                            raise EndpointError("the server closed the connection without an answer")
                        if wanted(event.type):
                            return event
                        if Error.is_type(event.type):
                            error = Error.from_event(event)
                            raise EndpointError(f"server error: {error.text} ({error.code or 'no code'})")
        except TimeoutError:
            raise EndpointError(f"no answer within {timeout:g}s") from None
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise EndpointError(f"unreachable ({exc.strerror or exc})", down=True) from None
        except OSError as exc:  # reset, broken pipe, no route: the server went away mid-request
            raise EndpointError(f"connection lost ({exc.strerror or exc})") from None
