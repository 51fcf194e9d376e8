"""The real bot on the loopback Telegram, and what a user sees of it. Used by tests and bench/."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from telethon import events


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

        return load_settings(
            {
                "API_ID": "1",
                "API_HASH": "0" * 32,
                "DATA_DIR": str(self.data_dir),
                "TEMP_DIR": str(self.data_dir / "temp"),
                "WHISPER_BEAM_SIZE": "1",
                **self.env,
            },
            dotenv_path=None,
        )

    @property
    def temp_dir(self) -> Path:
        return self.settings.temp_dir

    async def start(self, **env: str) -> RunningBot:
        from voicebot.app import Bot

        self.env.update(env)
        # As the bot makes it (telegram.make_client): flood waits come to the adapter, and
        # catch-up replays what arrived while the bot was down.
        self.client = self.fakegram.client_for(
            self.user, flood_sleep_threshold=0, catch_up=True, raise_last_call_error=True
        )
        self.bot = Bot(self.settings, self.engine)
        await self.bot.start(self.client)  # attaches the handler, then connects
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
            if self.bot.metrics is not None:  # a dead process serves nothing: the port is free again
                self.bot.metrics.stop()
            await self.client.disconnect()
            self.bot = None

    async def owner(self):
        """A second session of the bot's own account (the owner's phone)."""
        if self._owner is None:
            self._owner = self.fakegram.client_for(self.user)
            await self._owner.connect()
        return self._owner


class Inbox:
    """What a user sees of the bot's messages: new ones and edits, by message id."""

    def __init__(self, client, peer_id):
        self.client, self.texts, self.edits, self.changed = client, {}, [], asyncio.Event()
        self.reply_to = {}
        self.first = {}  # id → the text the message had when it arrived
        self.deleted = set()  # ids deleted (private chats and basic groups carry no chat: any)
        client.add_event_handler(self._new, events.NewMessage(chats=peer_id))
        client.add_event_handler(self._edit, events.MessageEdited(chats=peer_id))
        client.add_event_handler(self._delete, events.MessageDeleted())

    async def _new(self, event):
        self.texts[event.id] = self.first[event.id] = event.raw_text
        self.reply_to[event.id] = event.message.reply_to_msg_id
        self.changed.set()

    async def _delete(self, event):
        self.deleted.update(event.deleted_ids)
        self.changed.set()

    async def _edit(self, event):
        self.texts[event.id] = event.raw_text
        self.edits.append((event.id, event.raw_text))
        self.changed.set()

    def replies_to(self, message_id):
        return [self.texts[i] for i in sorted(self.texts) if self.reply_to.get(i) == message_id]

    async def wait(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; the inbox holds {self.texts}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass
        return True


def transcribed(inbox, message_id):
    """The reply to ``message_id`` is final: not a placeholder or progress any more."""
    texts = inbox.replies_to(message_id)
    return bool(texts) and not any(t.startswith("🎙") for t in texts)


class BotProcess:
    """``python -m voicebot run`` in a child process, on a session file for a fakegram user.

    For what only a real process shows: ``kill -9``, SIGTERM, the exit code.
    """

    def __init__(self, fakegram, user, data_dir: Path, model_path: str, **env: str):
        import os
        import sys

        from telethon.sessions import SQLiteSession, StringSession

        self.fakegram, self.user, self.data_dir = fakegram, user, data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        shared = StringSession(fakegram.session_string_for(user))
        session = SQLiteSession(str(data_dir / "voicebot"))
        session.set_dc(shared.dc_id, shared.server_address, shared.port)
        session.auth_key = shared.auth_key
        session.save()
        session.close()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("API_", "WHISPER_"))},
            "API_ID": "1",
            "API_HASH": "0" * 32,
            "DATA_DIR": str(data_dir),
            "TEMP_DIR": str(data_dir / "temp"),
            "WHISPER_MODEL": model_path,
            "WHISPER_BEAM_SIZE": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "DEBUG",
            **env,
        }
        self.argv = [sys.executable, "-m", "voicebot", "--env-file", "/nonexistent", "run"]
        self.process = None
        self.log = data_dir / "bot.log"

    async def start(self) -> BotProcess:
        import asyncio

        with open(self.log, "ab") as log:  # noqa: ASYNC230 (opening a log file before the process starts)
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=Path(__file__).parent.parent,
            )
        await self.fakegram.wait_online(self.user, timeout=60)
        return self

    async def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.process.returncode is not None:
                raise AssertionError(f"{text!r} never appeared in the bot's log:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        return await self.process.wait() if self.process else 0


async def burst_with_kills(
    fakegram,
    model_path: str,
    data_dir: Path,
    rng,
    *,
    voices: int = 20,
    senders: int = 3,
    kills: int = 2,
    window: float = 12.0,
    log=print,
) -> dict:
    """``voices`` voices from ``senders`` people at once to a real bot process, which is
    killed with SIGKILL ``kills`` times at random moments within ``window`` seconds (and
    restarted each time). Returns what the senders saw: every voice should have exactly
    one answer, and that answer should be a transcript.

    The same scenario serves the test suite (one round) and ``bench/kill_soak.py`` (many)."""
    from telethon.tl.types import DocumentAttributeAudio

    fixtures = Path(__file__).parent / "fixtures"
    tag = rng.randrange(10**6)
    owner = fakegram.create_user("Owner", username=f"owner{tag}")
    bot = await BotProcess(fakegram, owner, data_dir, model_path).start()
    people = []
    for n in range(senders):
        client = await fakegram.new_user(f"Sender{n}", username=f"sender{tag}x{n}")
        people.append((client, Inbox(client, owner.id)))
        await client.get_dialogs()
    sent: list[tuple[Inbox, int]] = []
    try:

        async def send_all():
            for i in range(voices):
                client, inbox = people[i % senders]
                name = "hello.ogg" if i % 2 else "weather.ogg"
                message = await client.send_file(
                    owner.username,
                    fixtures / name,
                    voice_note=True,
                    attributes=[DocumentAttributeAudio(duration=5, voice=True)],
                )
                sent.append((inbox, message.id))
                await asyncio.sleep(rng.uniform(0, 0.15))

        sending = asyncio.create_task(send_all())
        moments = sorted(rng.uniform(0.0, window) for _ in range(kills))
        started = time.monotonic()
        for moment in moments:
            await asyncio.sleep(max(0.0, moment - (time.monotonic() - started)))
            bot.process.kill()
            await bot.process.wait()
            log(f"  killed at {moment:.2f}s after the burst began ({len(sent)} voices sent)")
            await bot.start()
        await sending
        deadline = time.monotonic() + 60 + voices * 15
        while not all(transcribed(inbox, mid) for inbox, mid in sent):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # a duplicate would arrive now
    finally:
        await bot.stop()
    answers = [len(inbox.replies_to(mid)) for inbox, mid in sent]
    final = [transcribed(inbox, mid) for inbox, mid in sent]
    return {
        "voices": len(sent),
        "answered_once": sum(n == 1 for n in answers),
        "duplicates": sum(n > 1 for n in answers),
        "unanswered": sum(n == 0 for n in answers),
        "not_final": sum(not f for f in final),
        "log": bot.log,
    }
