"""Audio: probe a downloaded file and decode it to the 16 kHz mono float32 Whisper wants.

Two tools, each where it earns its place:

* **PyAV** (in-process, the same libraries faster-whisper uses) probes the file first
  (:func:`probe`: the real duration, since a sender's client can lie about it, and whether
  there is an audio track at all) so an over-long recording is refused before the decode,
  then decodes and resamples in ~10 s blocks, so memory stays at the size of the output.
* **pydub + the ffmpeg/ffprobe binaries** are the fallback for inputs PyAV's bundled
  FFmpeg cannot open or decode; the system ffmpeg usually has more codecs. A separate
  process costs ~100 ms, which is why it is not the first choice.

Example::

    info = probe("voice.ogg")        # Probe(duration=4.2, codec='opus', ...)
    samples = decode("voice.ogg")    # numpy float32 array, 16 kHz mono
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from loguru import logger
from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError
from pydub.utils import mediainfo_json

from .errors import AudioError

SAMPLE_RATE = 16_000
_BLOCK = 500_000  # samples per resampling block (≈10 s at 48 kHz)


@dataclass(frozen=True)
class Probe:
    """What ffprobe found in a file."""

    duration: float | None
    codec: str
    container: str


def probe(path: str | Path) -> Probe:
    """Inspect ``path``; raise :class:`AudioError` unless it holds an audio track.

    PyAV answers in under a millisecond; ffprobe (through pydub, ~100 ms for the process)
    is asked only about files PyAV cannot open.

    Example::

        probe("tests/fixtures/hello.ogg").codec   # 'opus'
    """
    path = Path(path)
    _check_not_empty(path)
    try:
        return _probe_pyav(path)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        logger.debug("PyAV could not open {}: {}; asking ffprobe", path.name, exc)
        return _probe_ffprobe(path)


def _probe_pyav(path: Path) -> Probe:
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            if not container.streams:
                raise ValueError("no streams")  # not media at all: let ffprobe have a look
            raise AudioError("the file has no audio track")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise ValueError("PyAV has no decoder for this codec")  # the system ffmpeg may have one
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        return Probe(duration=_first_float(duration), codec=stream.codec_context.codec.canonical_name,
                     container=container.format.name)


def _probe_ffprobe(path: Path) -> Probe:
    try:
        info = mediainfo_json(str(path))
    except (json.JSONDecodeError, OSError, subprocess.SubprocessError) as exc:
        raise AudioError("the file is not a media file ffprobe understands") from exc
    streams = info.get("streams") if isinstance(info, dict) else None
    if not streams:
        raise AudioError("the file is not audio or video (no streams found)")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise AudioError("the file has no audio track")
    codec = str(audio[0].get("codec_name") or "none")
    if codec == "none":
        raise AudioError(f"the audio is in an unknown codec ({audio[0].get('codec_tag_string', '?')})")
    duration = _first_float(audio[0].get("duration"), info.get("format", {}).get("duration"))
    return Probe(duration=duration, codec=codec,
                 container=str(info.get("format", {}).get("format_name", "")))


def decode(path: str | Path) -> np.ndarray:
    """Decode ``path`` to 16 kHz mono float32 in [-1, 1].

    Raises :class:`AudioError` when neither PyAV nor ffmpeg can get any audio out.

    Example::

        samples = decode("tests/fixtures/hello.ogg")
        seconds = len(samples) / SAMPLE_RATE
    """
    path = Path(path)
    _check_not_empty(path)
    try:
        samples = _decode_pyav(path)
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
        logger.debug("PyAV could not decode {}: {}; trying ffmpeg", path.name, exc)
        samples = _decode_ffmpeg(path)
    if samples.size == 0:
        raise AudioError("no audio could be decoded (truncated or empty recording)")
    return samples


def _decode_pyav(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    out = _Buffer()
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        stream = container.streams.audio[0]  # IndexError: no audio track
        if stream.duration is not None and stream.time_base is not None:
            out.reserve(int(stream.duration * stream.time_base * SAMPLE_RATE) + SAMPLE_RATE)
        # Resampling ~10 s blocks instead of 20 ms frames halves the decode time.
        fifo = av.AudioFifo()
        try:
            for frame in container.decode(stream):
                frame.pts = None  # the FIFO checks timestamps; a sender's file may have gaps
                fifo.write(frame)
                if fifo.samples >= _BLOCK:
                    out.extend(resampler.resample(fifo.read()))
        except av.error.InvalidDataError:
            # A truncated tail: keep what decoded cleanly, as Telegram's own player does.
            if not out.size and not fifo.samples:
                raise
        if fifo.samples:
            out.extend(resampler.resample(fifo.read()))
        out.extend(resampler.resample(None))  # flush
    return out.samples()


class _Buffer:
    """float32 samples written in place: peak memory is the output plus one frame, not
    a list of int16 chunks, their concatenation and a float copy (3.5x for a long voice)."""

    def __init__(self) -> None:
        self._data = np.zeros(0, dtype=np.float32)
        self.size = 0

    def reserve(self, capacity: int) -> None:
        if capacity > len(self._data):
            grown = np.zeros(capacity, dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown

    def extend(self, frames) -> None:
        for frame in frames:
            self.append(frame.to_ndarray().reshape(-1))

    def append(self, pcm16: np.ndarray) -> None:
        if self.size + len(pcm16) > len(self._data):
            self.reserve(max(2 * len(self._data), self.size + len(pcm16), SAMPLE_RATE * 60))
        self._data[self.size: self.size + len(pcm16)] = pcm16
        self._data[self.size: self.size + len(pcm16)] /= 32768.0
        self.size += len(pcm16)

    def samples(self) -> np.ndarray:
        return self._data[: self.size]


def _decode_ffmpeg(path: Path) -> np.ndarray:
    try:
        segment = AudioSegment.from_file(str(path))
    except (CouldntDecodeError, IndexError, KeyError, json.JSONDecodeError) as exc:
        # IndexError/KeyError: pydub found no audio stream in ffprobe's answer.
        raise AudioError("the file is not audio ffmpeg can decode") from exc
    segment = segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    return np.frombuffer(segment.raw_data, dtype=np.int16).astype(np.float32) / 32768.0


def _check_not_empty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError("the file does not exist") from None
    if size == 0:
        raise AudioError("the file is empty")


def _first_float(*values: object) -> float | None:
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if number > 0:
            return number
    return None
