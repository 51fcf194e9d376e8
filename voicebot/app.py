"""Wiring: settings + engine + Telegram client → a running bot, and its orderly stop.

Example::

    bot = Bot(settings)
    me = await bot.start(client, load=lambda: asyncio.to_thread(load_engine, settings))
    # attached, connected (NotLoggedIn if the session is not), engine loaded, serving
    await telegram.stay_connected(client, on_back=bot.telegram_back)   # until cancelled
    await bot.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable

from loguru import logger

from voicebot import metrics, telegram
from voicebot.config import Settings
from voicebot.core.assembly import build_core
from voicebot.core.backfill import backfill
from voicebot.core.dispatch import Dispatch
from voicebot.core.health import Wedged, wedged
from voicebot.core.jobs.queue import THREAD_PREFIX
from voicebot.core.pipeline import Pipeline
from voicebot.engine.base import Transcriber
from voicebot.engine.loader import load_engine
from voicebot.errors import LOGIN_HINT, ConfigError, NotLoggedIn, WorkerWedged
from voicebot.llm.client import host_of, stays_here
from voicebot.messages import IncomingMessage, Reaction
from voicebot.state import WATCHING_SINCE, State
from voicebot.storage import TempDir, exclusive_lock, prepare_data_dir, write_heartbeat

JOURNAL_DAYS = 30
OUTAGE_MARGIN_S = 120  # backfill after an outage starts this long before it was noticed
STOP_GRACE_SECONDS = 5  # docker stop waits 10 s before SIGKILL: drain, then leave time to exit


def worker_count(settings: Settings, engine: Transcriber) -> int:
    """``MAX_CONCURRENT_JOBS``, or what the engine suggests: 1 on CPU (jobs would only share
    cores), 2 on CUDA, one per server slot for a remote engine."""
    if settings.max_concurrent_jobs:
        return settings.max_concurrent_jobs
    return engine.concurrency()


class Intake:
    """Where Telegram hands over messages and reactions. Until the core exists (the client
    must be connected to learn who the owner is) they wait here, in order: none is dropped."""

    def __init__(self):
        self._waiting: list[IncomingMessage | Reaction] = []
        self._target: Dispatch | None = None

    async def message(self, msg: IncomingMessage) -> None:
        await self._hand(msg)

    async def reaction(self, reaction: Reaction) -> None:
        await self._hand(reaction)

    async def _hand(self, item: IncomingMessage | Reaction) -> None:
        if self._target is None:
            self._waiting.append(item)
        elif isinstance(item, Reaction):
            await self._target.on_reaction(item)
        else:
            await self._target.on_message(item)

    async def open(self, target: Dispatch) -> None:
        """From now on hand everything to ``target``, starting with what waited."""
        while self._waiting:
            item = self._waiting.pop(0)
            await (target.on_reaction(item) if isinstance(item, Reaction) else target.on_message(item))
        self._target = target


class Bot:
    """The running userbot: a pipeline fed by a Telegram client, plus the heartbeat."""

    def __init__(self, settings: Settings, engine: Transcriber | None = None):
        self.settings = settings
        self.engine = engine
        self.pipeline: Pipeline | None = None
        self.state: State | None = None
        self._client = None
        self._handlers: list = []
        self._heartbeat: asyncio.Task | None = None
        self._backfill: asyncio.Task | None = None
        self._poll: asyncio.Task | None = None  # the owner's reactions, looked for
        self._chat = None
        self._gap_backfills: set[asyncio.Task] = set()
        self._wedged: asyncio.Future[WorkerWedged] | None = None
        self.metrics: metrics.Server | None = None

    async def start(self, client, *, load: Callable[[], Awaitable[Transcriber]] | None = None):
        """Serve ``client`` from now on; returns the account's user.

        The handlers are attached before the client connects, so nothing that arrives while
        it starts (Telethon's catch-up replays what came while we were down) is lost; it waits
        in the intake until the pipeline exists. A session that is not logged in raises
        :class:`NotLoggedIn` before ``load`` (the engine: minutes on a first start) begins.
        Then what a crash left unfinished is resumed, and backfill looks for anything missed.
        With ``METRICS_PORT`` set, the metrics are served first (a port in use is a
        :class:`ConfigError` before anything else happens)."""
        self._serve_metrics()
        # Opened before connecting, and the watch begun: a voice Telegram pushes to this start
        # is newer than the mark, so the next start's backfill finds it even if this one is
        # killed before it journals anything (or before Telethon saved any update state).
        self.state = State.in_dir(self.settings.data_dir)
        try:
            self.state.marks.keep(WATCHING_SINCE, time.time())
            return await self._start(client, load)
        except BaseException:
            self.state.close()
            self.state = None
            await self._stop_metrics()
            raise

    async def _start(self, client, load: Callable[[], Awaitable[Transcriber]] | None):
        temp = TempDir(self.settings.temp_dir)
        temp.prepare()
        self._client = client
        intake = Intake()
        reaction = self.settings.react_to_transcribe
        self._handlers = telegram.attach(
            client, intake.message, intake.reaction if reaction else None, reaction=reaction
        )
        if client.is_connected():
            me = await client.get_me()
        else:
            me = await telegram.connect(client)
        if self.engine is None:
            assert load is not None, "Bot needs an engine or a way to load one"
            try:
                self.engine = await load()
            except BaseException:  # a model that cannot load: leave Telegram as we found it
                telegram.detach(client, self._handlers)
                await client.disconnect()
                raise
        # Finished jobs are kept a month, far longer than backfill looks back, so a voice
        # backfill finds again is still known as answered.
        self.state.journal.prune(older_than_days=max(JOURNAL_DAYS, int(self.settings.backfill_hours / 24) + 1))
        chat = telegram.TelethonChat(client, me.id)
        core = build_core(
            self.settings,
            self.engine,
            chat,
            temp,
            self.state,
            owner_id=me.id,
            workers=worker_count(self.settings, self.engine),
        )
        self.pipeline = core.pipeline
        self.pipeline.start()
        self._heartbeat = asyncio.create_task(self._beat(client))
        await self.pipeline.resume()
        await intake.open(core.dispatch)
        self._chat = chat
        self._backfill = asyncio.create_task(backfill(self.settings, self.state, chat, admit=self.pipeline))
        self._poll = asyncio.create_task(core.poll.run())
        telegram.watch_channel_gaps(client, self._channel_gap)
        return me

    def _channel_gap(self, chat_id: int | None) -> None:
        """Telethon skipped a gap too long to replay in this channel (more than 100 events), or in
        the account's own updates (``None``): look for the voices in it."""
        if self.pipeline is None:
            return
        logger.info(
            "{}: too much missed to replay; looking for recordings", f"chat {chat_id}" if chat_id else "every chat"
        )
        task = asyncio.get_running_loop().create_task(
            backfill(self.settings, self.state, self._chat, admit=self.pipeline, only=chat_id)
        )
        self._gap_backfills.add(task)
        task.add_done_callback(self._gap_backfills.discard)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Take no new work, give running jobs ``grace`` seconds to deliver, then stop."""
        if self.pipeline is None:
            return
        telegram.detach(self._client, self._handlers)
        for task in (self._backfill, self._heartbeat, self._poll, *self._gap_backfills):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            await asyncio.wait_for(self.pipeline.drain(), grace)
        except TimeoutError:
            logger.warning(
                "stopping with {} job(s) unfinished", self.pipeline.queue.running + self.pipeline.queue.waiting
            )
        await self.pipeline.stop()
        self.state.close()
        self.pipeline = None
        await self._stop_metrics()

    def _serve_metrics(self) -> None:
        host, port = self.settings.metrics_host, self.settings.metrics_port
        if not port or self.metrics is not None:
            return
        try:
            self.metrics = metrics.start(host, port)
        except OSError as exc:
            raise ConfigError("METRICS_PORT", f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        logger.info("metrics at {}", self.metrics.url)

    async def _stop_metrics(self) -> None:
        if self.metrics is not None:
            server, self.metrics = self.metrics, None
            await asyncio.to_thread(server.stop)  # its shutdown polls: not on the loop

    def telegram_back(self, away_s: float) -> None:
        """Telegram is reachable again after ``away_s`` seconds: jobs waiting out the outage go
        now, not at their timer, and backfill looks over the outage. Telethon's catch-up replays
        most of it, but not a channel with more than 100 events meanwhile
        (``channelDifferenceTooLong``: Telethon moves the pts on and returns nothing)."""
        if self.pipeline is None:
            return
        self.pipeline.reconnected()
        if self._backfill is None or self._backfill.done():
            since = time.time() - away_s - OUTAGE_MARGIN_S
            self._backfill = asyncio.create_task(
                backfill(self.settings, self.state, self._chat, admit=self.pipeline, since=since)
            )

    async def _beat(self, client) -> None:
        """Write the heartbeat every HEARTBEAT_SECONDS while connected, unless a job is wedged.

        A blocked event loop stops it too: this runs on the loop."""
        withheld: Wedged | None = None
        while True:
            stuck = self._stuck()
            if stuck is not None and withheld is None:
                job = stuck.job
                logger.error(
                    "heartbeat withheld: job chat={} msg={} has run {:.0f}s, past its limit of {:.0f}s "
                    "(max of STUCK_JOB_SECONDS and STUCK_JOB_FACTOR × {:.1f}s of audio); `voicebot health` "
                    "fails until it ends, and a restart resumes it from the journal",
                    job.chat_id,
                    job.message_id,
                    stuck.ran_s,
                    stuck.limit_s,
                    job.audio_s or 0.0,
                )
            elif stuck is None and withheld is not None:
                logger.info("heartbeat resumed: no job is past its limit")
            if stuck is not None and stuck.ran_s >= 2 * stuck.limit_s and not self.wedged.done():
                # Docker's restart policy does not act on "unhealthy" (only Swarm does): past twice
                # the limit the bot ends itself, non-zero, and is restarted like after a crash.
                self.wedged.set_result(
                    WorkerWedged(
                        f"job chat={stuck.job.chat_id} msg={stuck.job.message_id} is stuck "
                        f"({stuck.ran_s:.0f}s, twice past its limit of {stuck.limit_s:.0f}s); "
                        "exiting so the next start resumes it from the journal"
                    )
                )
            withheld = stuck
            if stuck is None and client.is_connected():
                await asyncio.to_thread(write_heartbeat, self.settings.data_dir)
            await asyncio.sleep(self.settings.heartbeat_s)

    @property
    def wedged(self) -> asyncio.Future[WorkerWedged]:
        """Resolved (with why) once a job is stuck twice past its limit: ``run`` then exits non-zero."""
        if self._wedged is None:
            self._wedged = asyncio.get_running_loop().create_future()
        return self._wedged

    def _stuck(self) -> Wedged | None:
        if self.pipeline is None:
            return None
        servers = self.engine.endpoints() if self.engine is not None else []
        return wedged(
            self.pipeline.running_jobs(),
            time.monotonic(),
            floor_s=self.settings.stuck_job_s,
            factor=self.settings.stuck_job_factor,
            servers_down=bool(servers) and all(s.state not in ("ok", "busy") for s in servers),
        )


async def run(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT (returns), through any Telegram outage.

    It raises when it cannot go on (the session was logged out: :class:`NotLoggedIn`), so only
    a requested stop exits 0.

    Never asks for a phone number, terminal or not: a missing or logged-out session is
    :class:`NotLoggedIn` (one line saying how to log in; the CLI exits 2)."""
    prepare_data_dir(settings.data_dir)
    if not settings.session_file.exists():
        raise NotLoggedIn(f"not logged in: {LOGIN_HINT}")
    with exclusive_lock(settings.data_dir):
        client = telegram.make_client(settings)
        stop = asyncio.Event()  # before Bot.start: a SIGTERM during resume waits for it
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        bot = Bot(settings)
        me = await bot.start(client, load=lambda: asyncio.to_thread(load_engine, settings))
        prepare_data_dir(settings.data_dir)
        engine = bot.engine
        if engine.local:
            where = f"model {settings.whisper_model} on {engine.device}"
        else:  # said plainly at every start: the user chose to send audio elsewhere
            where = (
                f"{settings.whisper_engine} servers {', '.join(e.name for e in engine.endpoints())}: "
                f"audio leaves this machine"
            )
        if settings.llm_url:  # as plainly: the user chose to send transcripts to an LLM
            where += f"; transcripts are sent to the LLM at {host_of(settings.llm_url)}" + (
                " (this machine)" if stays_here(settings.llm_url) else ": text leaves this machine"
            )
        if bot.metrics is not None:
            where += f"; metrics at {bot.metrics.url}"
        logger.info("voicebot is running as {} (id {}); {}", me.first_name, me.id, where)
        # Reconnects for as long as it takes; it ends only by raising (logged out), and then
        # run raises too: an unrequested end never exits 0 (systemd's Restart=on-failure).
        connected = asyncio.ensure_future(telegram.stay_connected(client, on_back=bot.telegram_back))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connected, stopping, bot.wedged}, return_when=asyncio.FIRST_COMPLETED)
        failed = connected.done()
        logger.info("stopping")
        connected.cancel()
        stopping.cancel()
        try:
            await bot.stop()
        finally:
            await client.disconnect()
        if failed:
            connected.result()  # its error, for the CLI's one line and exit code
        if bot.wedged.done():
            raise bot.wedged.result()
        with contextlib.suppress(asyncio.CancelledError):
            await connected


def abandon_running_work(wait: float = 2.0, code: int = 0) -> None:
    """Exit now with ``code`` even if a worker thread is still inside the engine (else return).

    The journal already records its job as unfinished, so it resumes on the next start;
    waiting for it (what the interpreter would do) could outlast ``docker stop``'s 10 s.
    """
    busy = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]
    for thread in busy:
        thread.join(wait / len(busy))
    if any(t.is_alive() for t in busy):
        logger.info("leaving an interrupted transcription to the next start")
        logger.complete()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
