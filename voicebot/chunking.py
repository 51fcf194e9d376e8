"""Cut audio at silences into chunks of speech no longer than Whisper's 30 s window.

Pure numpy (no model, no faster-whisper), so the remote-only image has it too: frame
energy against the recording's own noise floor finds the speech, cuts go in the middle of
the pauses, and stretches with no speech are never yielded, so they are never sent to a
server (silence is where Whisper invents "Thank you."). A pause-free stretch longer
than the limit is cut at its quietest frame.

Example::

    for chunk in speech_chunks(samples, max_seconds=30):
        print(f"{chunk.offset:.1f}s: {len(chunk.samples) / 16000:.1f}s of speech")
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 50  # 20 ms
SILENCE_DB = -50.0  # below this a frame is silence, whatever the floor
ABOVE_FLOOR_DB = 12.0  # speech stands this far above the recording's noise floor
MERGE_GAP_S = 0.3  # shorter pauses belong to the speech around them
MIN_SPEECH_S = 0.2  # shorter blips (a click, a breath) are not speech
PAD_S = 0.2  # context kept either side of speech


@dataclass(frozen=True)
class Chunk:
    """``samples`` of speech starting ``offset`` seconds into the recording."""

    offset: float
    samples: np.ndarray


def speech_chunks(samples: np.ndarray, *, max_seconds: float = 30.0) -> Iterator[Chunk]:
    """Chunks of ``samples`` (16 kHz mono float32) holding speech, in order, each at most
    ``max_seconds`` long, cut in pauses. Nothing is yielded for silence or steady noise."""
    regions = _speech_regions(samples)
    if not regions:
        return
    limit = int(max_seconds * SAMPLE_RATE)
    pad = int(PAD_S * SAMPLE_RATE)
    start = max(regions[0][0] - pad, 0)
    end = start
    for i, (r_start, r_end) in enumerate(regions):
        if r_end + pad - start > limit and end > start:
            # Close the chunk in the middle of the pause before this region.
            cut = min((end + r_start) // 2, start + limit)
            yield Chunk(float(start / SAMPLE_RATE), samples[start:cut])
            start = max(cut, r_start - pad)
        while r_end + pad - start > limit:  # one region longer than a chunk: its quietest frame
            cut = _quietest(samples, start + limit // 2, start + limit)
            yield Chunk(float(start / SAMPLE_RATE), samples[start:cut])
            start = cut
        end = min(r_end + pad, len(samples))
    yield Chunk(float(start / SAMPLE_RATE), samples[start:end])


def _speech_regions(samples: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)] sample ranges of speech."""
    n = len(samples) // FRAME
    if n == 0:
        return []
    frames = samples[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    db = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    floor = np.percentile(db, 10)
    loud = db > max(SILENCE_DB, floor + ABOVE_FLOOR_DB)
    regions: list[list[int]] = []
    merge = int(MERGE_GAP_S * 50)
    for i in np.flatnonzero(loud):
        if regions and i - regions[-1][1] <= merge:
            regions[-1][1] = i + 1
        else:
            regions.append([i, i + 1])
    minimum = int(MIN_SPEECH_S * 50)
    return [(a * FRAME, b * FRAME) for a, b in regions if b - a >= minimum]


def _quietest(samples: np.ndarray, low: int, high: int) -> int:
    """The start of the quietest 20 ms frame in ``samples[low:high]``."""
    n = (high - low) // FRAME
    frames = samples[low: low + n * FRAME].reshape(n, FRAME)
    return low + int(np.argmin(np.mean(frames * frames, axis=1))) * FRAME
