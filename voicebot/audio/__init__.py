"""Audio in: decoding any recording to 16 kHz mono float32, and cutting it into speech.

No model library is imported here (the local engine passes its Silero detector in), so an
image without faster-whisper decodes and chunks the same way.

- :mod:`.decoding`: probe and decode, whole or block by block (PyAV; pydub/ffmpeg fallback)
- :mod:`.chunking`: speech chunks of at most 30 s, cut in pauses, as blocks arrive
- :mod:`.streaming`: Whisper's 30 s windows over the chunks as they arrive

Example::

    recording = open_recording("voice.ogg", max_duration_s=3600)   # probes, decodes block 1
    samples = decode("voice.ogg")                                  # the whole file at once
"""

from .decoding import SAMPLE_RATE, Probe, Recording, decode, open_recording, probe

__all__ = ["SAMPLE_RATE", "Probe", "Recording", "decode", "open_recording", "probe"]
