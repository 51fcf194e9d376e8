"""The owner's commands, typed in any chat from the owner's own account.

``.t`` (reply to a voice) transcribes on demand (so does the owner's reaction, see
:mod:`.reactions`); ``.auto``, ``.lang`` set per-chat
preferences; ``.status``, ``.find``, ``.srt``, ``.help`` answer. The command message is
edited into the answer, so chats stay clean, except where the answer would show the other
party what happens in other chats (``.find`` snippets, ``.status`` totals): typed anywhere
but Saved Messages, those answers go to Saved Messages and the command is deleted. The
prefix is ``COMMAND_PREFIX``.

Example::

    parse_command(".lang uk", ".")   # Command(name='lang', args='uk')
    await pipeline.commands.run(command, msg)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .chat import Sent
from .formatting import duration_text, escape, to_srt
from .media import IncomingMessage

if TYPE_CHECKING:
    from .pipeline import Pipeline

NAMES = ("t", "srt", "auto", "lang", "find", "status", "help")
PRIVATE_ANSWERS = ("find", "status")  # they reveal other chats: never shown where others read


@dataclass(frozen=True)
class Command:
    name: str
    args: str = ""


def parse_command(text: str, prefix: str) -> Command | None:
    """``Command`` if ``text`` is one of ours (``.t``, ``.lang uk``…), else ``None``.

    Example::

        parse_command(".find train journey", ".")  # Command('find', 'train journey')
        parse_command(".tomorrow?", ".")           # None: not a command, just text
    """
    if not text.startswith(prefix):
        return None
    name, _, args = text[len(prefix):].strip().partition(" ")
    name = name.lower()
    return Command(name, args.strip()) if name in NAMES else None


class Commands:
    """Runs commands against a pipeline; every answer replaces the command's own text."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    async def run(self, command: Command, msg: IncomingMessage) -> None:
        here = Sent(msg.chat_id, msg.message_id, msg.ref)
        handler = getattr(self, f"_{command.name}")
        answer = await handler(command.args, msg, here)
        if answer is None:
            return
        chat = self.pipeline.chat
        if command.name in PRIVATE_ANSWERS and msg.chat_id != self.pipeline.owner_id:
            await chat.send("saved", answer)
            await chat.delete(here)
        else:
            await chat.edit(here, answer)

    def _say(self, key: str, **values: object) -> str:
        return self.pipeline.say(key, **values)

    async def _t(self, args: str, msg: IncomingMessage, here) -> str | None:
        target = await self.pipeline.chat.replied_to(msg) if msg.reply_to else None
        if target is None:
            return self._say("no_reply", command="t")
        if target.media is None:
            return self._say("not_media")
        await self.pipeline.accept(target, forced=True, placeholder=here, again=True)
        return None  # the command message itself becomes the placeholder, then the transcript

    async def _srt(self, args: str, msg: IncomingMessage, here) -> str | None:
        target = await self.pipeline.chat.replied_to(msg) if msg.reply_to else None
        if target is None or target.media is None:
            return self._say("no_reply", command="srt")
        media = target.media
        cached = self.pipeline.state.cache.get(media.document_id) if media.document_id and not media.view_once else None
        if cached is None or not cached.segments:
            return self._say("no_srt")
        await self.pipeline.chat.send_file(None, "transcript.srt", to_srt(cached.segments).encode(), reply_to=target)
        await self.pipeline.chat.delete(here)
        return None

    async def _auto(self, args: str, msg: IncomingMessage, here) -> str:
        choice = args.lower()
        if choice not in ("on", "off", "default"):
            return self._say("usage", usage=f"{self.pipeline.settings.command_prefix}auto on|off|default")
        self.pipeline.state.chats.set_auto(msg.chat_id, {"on": True, "off": False, "default": None}[choice])
        return self._say({"on": "auto_on", "off": "auto_off", "default": "auto_default"}[choice])

    async def _lang(self, args: str, msg: IncomingMessage, here) -> str:
        code = args.lower()
        if code in ("auto", ""):
            self.pipeline.state.chats.set_language(msg.chat_id, None)
            return self._say("lang_auto")
        if not re.fullmatch(r"[a-z]{2,3}", code):
            return self._say("bad_lang", language=args[:20])
        self.pipeline.state.chats.set_language(msg.chat_id, code)
        return self._say("lang_set", language=code)

    async def _status(self, args: str, msg: IncomingMessage, here) -> str:
        p = self.pipeline
        rtf = p.stats.average_rtf
        answer = self._say(
            "status", waiting=p.queue.waiting, running=p.queue.running,
            model=escape(p.transcriber.model_name), device=p.transcriber.device,
            uptime=duration_text(time.time() - p.stats.started_at),
            done=p.stats.jobs_done, failed=p.stats.jobs_failed,
            rtf="—" if rtf is None else f"{rtf:.2f}", cached=p.state.counts()["cached"])
        # A remote engine: each server, so a dead one is seen before it is missed.
        lines = [self._say("endpoint", name=escape(e.name), state=e.state, done=e.done, failed=e.failed,
                           detail=f"; {escape(e.detail)}" if e.detail else "")
                 for e in p.transcriber.endpoints()]
        return "\n".join([answer, *lines])

    async def _find(self, args: str, msg: IncomingMessage, here) -> str:
        if not args:
            return self._say("usage", usage=f"{self.pipeline.settings.command_prefix}find WORDS")
        hits = self.pipeline.state.search.search(args, limit=10)
        if not hits:
            return self._say("find_none", query=args[:100])
        lines = [self._say("find_header", count=len(hits), query=args[:100])]
        for hit in hits:
            link = self.pipeline.chat.link(hit.chat_id, hit.message_id)
            day = time.strftime("%Y-%m-%d", time.localtime(hit.date))
            when = f'<a href="{escape(link)}">{day}</a>' if link else day
            lines.append(f"• {when} {escape(hit.snippet)}")
        return "\n".join(lines)

    async def _help(self, args: str, msg: IncomingMessage, here) -> str:
        reaction = self.pipeline.settings.react_to_transcribe
        return self._say("help") + ("\n" + self._say("help_reaction", reaction=reaction) if reaction else "")
