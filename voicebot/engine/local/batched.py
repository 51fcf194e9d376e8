"""Chunks in batches through faster-whisper's ``BatchedInferencePipeline``: CUDA's default.

On a GPU, decoding several chunks (≤ 30 s, cut in pauses) at once is where the speed of long
voices is (faster-whisper's README). Text only, one segment per chunk, as faster-whisper's
batched default: one pass per chunk, no seeking back.

Example::

    for segment in batched(model, stream, tokenizer, options, size=8, quick=True, keep=engine._kept):
        print(segment.start, segment.text)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions

from voicebot.audio.chunking import Chunk
from voicebot.audio.streaming import SpeechStream
from voicebot.engine.base import Segment

# keep(start, end, text, no_speech_prob, avg_logprob, compression_ratio): the segment, or None
# for what the hallucination guards drop.
Keep = Callable[[float, float, str, float, float, float], Segment | None]


def batched(
    model: WhisperModel,
    stream: SpeechStream,
    tokenizer: Tokenizer,
    options: TranscriptionOptions,
    *,
    size: int,
    quick: bool,
    keep: Keep,
) -> Iterator[Segment]:
    """The stream's chunks decoded ``size`` at a time, fed as they arrive. The first chunk goes
    alone when ``quick``, so the first words do not wait for a whole batch."""
    options = dataclasses.replace(options, without_timestamps=True)
    pipeline = BatchedInferencePipeline(model)
    batch: list[Chunk] = []
    for chunk in stream.chunks():
        batch.append(chunk)
        if len(batch) >= size or (quick and chunk is stream.first):
            yield from _batch(model, pipeline, batch, tokenizer, options, keep)
            batch = []
    if batch:
        yield from _batch(model, pipeline, batch, tokenizer, options, keep)


def _batch(
    model: WhisperModel,
    pipeline: BatchedInferencePipeline,
    batch: list[Chunk],
    tokenizer: Tokenizer,
    options: TranscriptionOptions,
    keep: Keep,
) -> Iterator[Segment]:
    extract = model.feature_extractor
    features = np.stack([pad_or_trim(extract(chunk.samples)[..., :-1]) for chunk in batch])
    metadata = [{"offset": 0.0, "duration": chunk.duration, "segments": []} for chunk in batch]
    for chunk, pieces in zip(batch, pipeline.forward(features, tokenizer, metadata, options)):
        for piece in pieces:
            if piece["start"] == piece["end"] or not piece["text"].strip():
                continue
            segment = keep(
                chunk.time(min(piece["start"], chunk.duration)),
                chunk.time(min(piece["end"], chunk.duration), end=True),
                piece["text"],
                piece["no_speech_prob"],
                piece["avg_logprob"],
                piece["compression_ratio"],
            )
            if segment is not None:
                yield segment
