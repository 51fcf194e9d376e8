import pytest

from voicebot.engine.local import FasterWhisperTranscriber

from . import models
from .botharness import RunningBot

pytest_plugins = ["tests.fakegram.plugin"]


@pytest.fixture(scope="session")
def model_path() -> str:
    """The real tiny.en model (Systran/faster-whisper-tiny.en) shipped by a PyPI package."""
    return models.tiny_en()


@pytest.fixture(scope="session")
def base_model_path(request, tmp_path_factory) -> str:
    """The real multilingual base model (MIT), from two PyPI packages, joined once into the
    pytest cache (reused while its size matches the parts': tests/models.py); into the run's
    temp directory when the cache is off (``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    return models.base(cache.mkdir("models") if cache else tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def base_engine(base_model_path, tmp_path_factory) -> FasterWhisperTranscriber:
    """The multilingual engine, loaded once; beam 1, as bench/e2e.py (base is ~5x tiny.en's time)."""
    return FasterWhisperTranscriber.load(
        base_model_path, cache_dir=tmp_path_factory.mktemp("base-models"), device="cpu", beam_size=1
    )


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


@pytest.fixture(scope="session")
def llm_model(tmp_path_factory):
    """The tiny random-weight GGUF (tests/llm_server.py), written once per run."""
    from .llm_server import tiny_model

    return tiny_model(tmp_path_factory.mktemp("llm-model") / "tiny.gguf")


@pytest.fixture(scope="session")
def llm_server(llm_model, tmp_path_factory):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python) with the tiny model on loopback,
    for the whole run: ``.url`` (ends in /v1), ``.model`` (the name to send)."""
    from .llm_server import LlmServer

    with LlmServer(llm_model, log_dir=tmp_path_factory.mktemp("llm-server")) as server:
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
