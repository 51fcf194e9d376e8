"""Wiring: settings + engine + Telegram client → a running bot, and its orderly stop.

Example::

    engine = load_engine(settings)
    bot = Bot(settings, engine)
    me = await bot.start(client)     # attaches, connects (logging in on a terminal), serves
    await client.run_until_disconnected()
    await bot.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading

from loguru import logger

from . import telegram
from .backfill import backfill
from .config import Settings
from .errors import NotLoggedIn
from .media import IncomingMessage
from .pipeline import Pipeline
from .state import State
from .storage import TempDir, exclusive_lock, prepare_data_dir, write_heartbeat
from .engine import Transcriber, load_engine

HEARTBEAT_SECONDS = 30
JOURNAL_DAYS = 30
STOP_GRACE_SECONDS = 5  # docker stop waits 10 s before SIGKILL: drain, then leave time to exit


def worker_count(settings: Settings, engine: Transcriber) -> int:
    """``MAX_CONCURRENT_JOBS``, or what the engine suggests: 1 on CPU (jobs would only share
    cores), 2 on CUDA, one per server slot for a remote engine."""
    if settings.max_concurrent_jobs:
        return settings.max_concurrent_jobs
    return engine.concurrency()


class Intake:
    """Where Telegram hands over messages. Until the pipeline exists (the client must be
    connected to learn who the owner is) they wait here, in order: none is dropped."""

    def __init__(self):
        self._waiting: list[IncomingMessage] = []
        self._target = None

    async def __call__(self, msg: IncomingMessage) -> None:
        if self._target is None:
            self._waiting.append(msg)
        else:
            await self._target(msg)

    async def open(self, target) -> None:
        """From now on hand every message to ``target``, starting with those that waited."""
        self._target = target
        while self._waiting:
            await target(self._waiting.pop(0))


class Bot:
    """The running userbot: a pipeline fed by a Telegram client, plus the heartbeat."""

    def __init__(self, settings: Settings, engine: Transcriber):
        self.settings = settings
        self.engine = engine
        self.pipeline: Pipeline | None = None
        self.state: State | None = None
        self._client = None
        self._handler = None
        self._heartbeat: asyncio.Task | None = None
        self._backfill: asyncio.Task | None = None

    async def start(self, client, *, interactive: bool = False):
        """Serve ``client`` from now on; returns the account's user.

        The message handler is attached before the client connects, so nothing that
        arrives while it starts (Telethon's catch-up replays what came while we were down)
        is lost; those messages wait in the intake until the pipeline exists. Then what a
        crash left unfinished is resumed, and backfill looks for anything still missed."""
        temp = TempDir(self.settings.temp_dir)
        temp.prepare()
        self._client = client
        self.state = State.in_dir(self.settings.data_dir)
        # Finished jobs are kept a month, far longer than backfill looks back, so a voice
        # backfill finds again is still known as answered.
        self.state.journal.prune(older_than_days=max(JOURNAL_DAYS, int(self.settings.backfill_hours / 24) + 1))
        intake = Intake()
        self._handler = telegram.attach(client, intake)
        if client.is_connected():
            me = await client.get_me()
        else:
            me = await telegram.connect(client, interactive=interactive)
        self.pipeline = Pipeline(self.settings, self.engine, telegram.TelethonChat(client, me.id), temp,
                                 self.state, owner_id=me.id, workers=worker_count(self.settings, self.engine))
        self.pipeline.start()
        self._heartbeat = asyncio.create_task(self._beat(client))
        await self.pipeline.resume()
        await intake.open(self.pipeline.on_message)
        self._backfill = asyncio.create_task(backfill(self.pipeline))
        return me

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Take no new work, give running jobs ``grace`` seconds to deliver, then stop."""
        if self.pipeline is None:
            return
        telegram.detach(self._client, self._handler)
        for task in (self._backfill, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            await asyncio.wait_for(self.pipeline.drain(), grace)
        except TimeoutError:
            logger.warning("stopping with {} job(s) unfinished", self.pipeline.queue.running
                           + self.pipeline.queue.waiting)
        await self.pipeline.stop()
        self.state.close()
        self.pipeline = None

    async def _beat(self, client) -> None:
        while True:
            if client.is_connected():
                await asyncio.to_thread(write_heartbeat, self.settings.data_dir)
            await asyncio.sleep(HEARTBEAT_SECONDS)


async def run(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT or the connection is closed for good."""
    prepare_data_dir(settings.data_dir)
    interactive = sys.stdin.isatty()
    if not interactive and not settings.session_file.exists():
        raise NotLoggedIn("not logged in: run `python -m voicebot login` "
                          "(Docker: `docker compose run --rm voicebot login`) first")
    with exclusive_lock(settings.data_dir):
        engine = await asyncio.to_thread(load_engine, settings)
        client = telegram.make_client(settings)
        stop = asyncio.Event()  # before Bot.start: a SIGTERM during resume waits for it
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        bot = Bot(settings, engine)
        me = await bot.start(client, interactive=interactive)
        prepare_data_dir(settings.data_dir)  # the session file may be new: make it 0600
        if engine.local:
            where = f"model {settings.whisper_model} on {engine.device}"
        else:  # said plainly at every start: the user chose to send audio elsewhere
            where = (f"{settings.whisper_engine} servers {', '.join(e.name for e in engine.endpoints())}: "
                     f"audio leaves this machine")
        logger.info("voicebot is running as {} (id {}); {}", me.first_name, me.id, where)
        disconnected = asyncio.ensure_future(client.run_until_disconnected())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({disconnected, stopping}, return_when=asyncio.FIRST_COMPLETED)
        logger.info("stopping")
        await bot.stop()
        await client.disconnect()
        stopping.cancel()
        with contextlib.suppress(Exception):
            await disconnected


def abandon_running_work(wait: float = 2.0) -> None:
    """Exit now even if a worker thread is still inside the engine.

    The journal already records its job as unfinished, so it resumes on the next start;
    waiting for it (what the interpreter would do) could outlast ``docker stop``'s 10 s.
    """
    busy = [t for t in threading.enumerate() if t.name.startswith("voicebot-cpu") and t.is_alive()]
    for thread in busy:
        thread.join(wait / len(busy))
    if any(t.is_alive() for t in busy):
        logger.info("leaving an interrupted transcription to the next start")
        logger.complete()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
