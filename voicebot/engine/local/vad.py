"""Silero VAD as a streaming speech detector for :func:`voicebot.audio.chunking.speech_chunks`.

The same ONNX model faster-whisper's ``vad_filter`` runs, fed frame batches as they are
decoded. The remote engine gets it injected by :mod:`voicebot.engine.loader` where
faster-whisper is installed.

Example::

    chunks = speech_chunks(blocks, detector=silero_detector())
"""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import get_vad_model

from voicebot.audio.chunking import FRAME


def silero_detector() -> SileroDetector:
    """A fresh Silero VAD for one recording (the model faster-whisper's ``vad_filter`` runs),
    for :func:`voicebot.audio.chunking.speech_chunks`. The ONNX model is loaded once and shared.

    Example::

        chunks = speech_chunks(blocks, detector=silero_detector())
    """
    return SileroDetector()


class SileroDetector:
    """Silero VAD over consecutive frames, carrying its state from call to call.

    faster-whisper's ``SileroVADModel`` takes a whole recording at once; this feeds the same
    ONNX session frame batches as they are decoded, with the same 64-sample context per
    frame and the recurrent state carried over, so the probabilities are identical.
    """

    _CONTEXT = 64

    def __init__(self) -> None:
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._CONTEXT, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        batch = np.asarray(frames, dtype=np.float32).reshape(-1, FRAME)
        if not len(batch):
            return np.zeros(0, dtype=np.float32)
        context = np.concatenate([self._context[None], batch[:-1, -self._CONTEXT :]])
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, batch], axis=1), "h": self._h, "c": self._c}
        )
        self._context = batch[-1, -self._CONTEXT :].copy()
        return out.reshape(-1)
