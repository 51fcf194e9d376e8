"""Speech engines behind one interface.

This package's face is the interface alone (:mod:`.base`); the implementations live in
:mod:`.local` (faster-whisper) and :mod:`.remote` (speech servers), and only
:mod:`.loader` names them.

Example::

    from voicebot.engine.loader import load_engine
    engine: Transcriber = load_engine(settings)
"""

from .base import Audio, EndpointStatus, Segment, StreamInfo, Transcriber, Transcription, choose_language

__all__ = ["Audio", "EndpointStatus", "Segment", "StreamInfo", "Transcriber", "Transcription", "choose_language"]
