"""The owner's commands, typed in any chat from the owner's own account.

``.t`` (reply to a voice) transcribes on demand (so does the owner's reaction, see
:mod:`.reactions`); ``.sum`` and ``.tr`` (reply to a voice or its transcript) ask the LLM;
``.auto``, ``.lang``, ``.vocab``, ``.tr auto`` set per-chat preferences; ``.status``, ``.find``,
``.srt``, ``.help`` answer. The command message is edited into the answer, so chats stay
clean, except where the answer would show the other party what happens in other chats
(``.find`` snippets, ``.status`` totals): typed anywhere but Saved Messages, those answers go
to Saved Messages and the command is deleted. The prefix is ``COMMAND_PREFIX``.

Each command is a function registered with :func:`command`; it gets a :class:`Call` and the
:class:`Commands` context, whose parts are ports (``Admission``, ``StatusView``, ``Chat``) and
the state and the LLM's :class:`~voicebot.core.extras.Extras`, never the pipeline.

Example::

    parse_command(".lang uk", ".")   # Command(name='lang', args='uk')
    await commands.run(command, msg)
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicebot.config import Settings
from voicebot.core.extras import Extras
from voicebot.core.ports import Admission, Chat, StatusView
from voicebot.formatting import duration_text, escape, to_srt
from voicebot.messages import IncomingMessage, Sent
from voicebot.state import State


@dataclass(frozen=True)
class Command:
    name: str
    args: str = ""


@dataclass(frozen=True)
class Call:
    """One command as typed: its arguments, the message, and that message as ours to edit."""

    args: str
    msg: IncomingMessage
    here: Sent


Handler = Callable[["Commands", Call], Awaitable[str | None]]
_REGISTRY: dict[str, tuple[Handler, bool]] = {}  # name -> (handler, answer only in Saved Messages)


def command(name: str, *, private: bool = False) -> Callable[[Handler], Handler]:
    """Register ``name``; ``private``: its answer reveals other chats, so it goes to Saved Messages."""

    def register(handler: Handler) -> Handler:
        _REGISTRY[name] = (handler, private)
        return handler

    return register


def parse_command(text: str, prefix: str) -> Command | None:
    """``Command`` if ``text`` is one of ours (``.t``, ``.lang uk``…), else ``None``.

    Example::

        parse_command(".find train journey", ".")  # Command('find', 'train journey')
        parse_command(".tomorrow?", ".")           # None: not a command, just text
    """
    if not text.startswith(prefix):
        return None
    name, _, args = text[len(prefix) :].strip().partition(" ")
    name = name.lower()
    return Command(name, args.strip()) if name in _REGISTRY else None


class Commands:
    """Runs commands; every answer replaces the command's own text."""

    def __init__(
        self,
        settings: Settings,
        chat: Chat,
        state: State,
        say: Callable[..., str],
        *,
        admit: Admission,
        status: StatusView,
        owner_id: int | None,
        extras: Extras,
    ):
        self.settings, self.chat, self.state, self.say = settings, chat, state, say
        self.admit, self.status, self.owner_id, self.extras = admit, status, owner_id, extras

    async def run(self, command: Command, msg: IncomingMessage) -> None:
        here = Sent(msg.chat_id, msg.message_id, msg.ref)
        handler, private = _REGISTRY[command.name]
        answer = await handler(self, Call(command.args, msg, here))
        if answer is None:
            return
        if private and msg.chat_id != self.owner_id:
            await self.chat.send("saved", answer)
            await self.chat.delete(here)
        else:
            await self.chat.edit(here, answer)

    def usage(self, usage: str) -> str:
        return self.say("usage", usage=f"{self.settings.command_prefix}{usage}")


@command("t")
async def transcribe(c: Commands, call: Call) -> str | None:
    target = await c.chat.replied_to(call.msg) if call.msg.reply_to else None
    if target is None:
        return c.say("no_reply", command="t")
    if target.media is None:
        return c.say("not_media")
    await c.admit.accept(target, forced=True, placeholder=call.here, again=True)
    return None  # the command message itself becomes the placeholder, then the transcript


@command("srt")
async def subtitles(c: Commands, call: Call) -> str | None:
    target = await c.chat.replied_to(call.msg) if call.msg.reply_to else None
    if target is None or target.media is None:
        return c.say("no_reply", command="srt")
    media = target.media
    cached = c.state.cache.get(media.document_id) if media.document_id and not media.view_once else None
    if cached is None or not cached.segments:
        return c.say("no_srt")
    await c.chat.send_file(None, "transcript.srt", to_srt(cached.segments).encode(), reply_to=target)
    await c.chat.delete(call.here)
    return None


async def transcript_of(c: Commands, call: Call, name: str, language: str = "") -> tuple[IncomingMessage, str] | str:
    """The voice ``call`` replies to (directly, or through the bot's transcript of it) and
    its transcript; or what to answer instead. ``language``: a translation into it is asked."""
    target = await c.chat.replied_to(call.msg) if call.msg.reply_to else None
    if target is not None and target.media is None and target.outgoing and target.reply_to:
        target = await c.chat.replied_to(target)  # the bot's answer: the voice it answers
    if target is None or target.media is None:
        return c.say("no_reply", command=name)
    if not (c.extras.can_translate(language) if language else c.extras.writer is not None):
        return c.say("no_llm")
    media = target.media
    cached = c.state.cache.get(media.document_id) if media.document_id and not media.view_once else None
    if cached is None or not cached.text:
        return c.say("no_transcript", command=name)
    return target, c.extras.best_text(target, cached.text)


@command("sum")
async def summary(c: Commands, call: Call) -> str:
    """``.sum`` (reply to a voice or its transcript): a few lines about it, from the LLM."""
    found = await transcript_of(c, call, "sum")
    if isinstance(found, str):
        return found
    voice, text = found
    written = await c.extras.summary_for(voice, text)
    if written is None:
        return c.say("llm_failed")
    return f"{c.say('summary_title')}\n{escape(written)}"


@command("tr")
async def translation(c: Commands, call: Call) -> str | None:
    """``.tr de`` (reply to a voice or its transcript) translates it; ``.tr auto de`` translates
    every transcript in this chat; ``.tr off`` stops that."""
    words = call.args.lower().split()
    if words == ["off"]:
        c.state.chats.set_translate(call.msg.chat_id, None)
        return c.say("tr_off")
    auto = bool(words) and words[0] == "auto"
    code = words[1] if auto and len(words) == 2 else words[0] if len(words) == 1 and not auto else None
    if code is None:
        return c.usage("tr CODE|auto CODE|off")
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return c.say("bad_lang", language=code[:20])
    if auto:
        if not c.extras.can_translate(code):
            return c.say("no_llm")
        c.state.chats.set_translate(call.msg.chat_id, code)
        return c.say("tr_auto", language=code)
    found = await transcript_of(c, call, "tr", code)
    if isinstance(found, str):
        return found
    voice, text = found
    written = await c.extras.translation_for(voice, text, code)
    if written is None:
        return c.say("llm_failed")
    first, *rest = c.extras.translation_parts(code, written)
    for part in rest:  # the command message holds the first part; the rest follow it
        await c.chat.send(None, part, reply_to=voice)
    return first


@command("auto")
async def auto(c: Commands, call: Call) -> str:
    choice = call.args.lower()
    if choice not in ("on", "off", "default"):
        return c.usage("auto on|off|default")
    c.state.chats.set_auto(call.msg.chat_id, {"on": True, "off": False, "default": None}[choice])
    return c.say({"on": "auto_on", "off": "auto_off", "default": "auto_default"}[choice])


@command("lang")
async def lang(c: Commands, call: Call) -> str:
    """``.lang uk`` pins one language (it wins an unsure detection between confusable ones);
    ``.lang ru,en`` keeps detection inside a set; ``.lang auto`` clears both."""
    text = call.args.lower()
    if text in ("auto", ""):
        c.state.chats.set_language(call.msg.chat_id, None)
        return c.say("lang_auto")
    codes = [code.strip() for code in re.split(r"[,\s]+", text) if code.strip()]
    bad = next((code for code in codes if not re.fullmatch(r"[a-z]{2,3}", code)), None)
    if bad is not None:
        return c.say("bad_lang", language=bad[:20])
    codes = list(dict.fromkeys(codes))
    if len(codes) == 1:
        c.state.chats.set_language(call.msg.chat_id, codes[0])
        return c.say("lang_set", language=codes[0])
    c.state.chats.set_languages(call.msg.chat_id, codes)
    return c.say("langs_set", languages=", ".join(codes))


@command("vocab")
async def vocab(c: Commands, call: Call) -> str:
    """``.vocab add Siobhan, Llandudno`` / ``.vocab remove Siobhan`` / ``.vocab list``: the
    chat's own terms, first in every voice's vocabulary. Terms are separated by commas, or by
    spaces when there is no comma (``.vocab add Siobhan Llandudno``)."""
    verb, _, rest = call.args.partition(" ")
    verb = verb.lower()
    separator = "," if "," in rest else None
    terms = [t.strip() for t in rest.split(separator) if t.strip()][:50]
    chat_id = call.msg.chat_id
    if verb == "list" and not rest:
        current = c.state.chats.get(chat_id).vocabulary
    elif verb == "add" and terms:
        current = c.state.chats.add_terms(chat_id, (t[:64] for t in terms))
    elif verb == "remove" and terms:
        current = c.state.chats.remove_terms(chat_id, terms)
    else:
        return c.usage("vocab add WORDS|remove WORDS|list")
    if not current:
        return c.say("vocab_empty")
    key = {"list": "vocab_list", "add": "vocab_added", "remove": "vocab_removed"}[verb]
    return c.say(key, terms=", ".join(current))


@command("status", private=True)
async def status(c: Commands, call: Call) -> str:
    s = c.status.status()
    answer = c.say(
        "status",
        waiting=s.waiting,
        running=s.running,
        model=escape(s.model),
        device=s.device,
        uptime=duration_text(time.time() - s.started_at),
        done=s.done,
        failed=s.failed,
        rtf="—" if s.rtf is None else f"{s.rtf:.2f}",
        cached=s.cached,
    )
    # A remote engine: each server, so a dead one is seen before it is missed.
    lines = [
        c.say(
            "endpoint",
            name=escape(e.name),
            state=e.state,
            done=e.done,
            failed=e.failed,
            detail=f"; {escape(e.detail)}" if e.detail else "",
        )
        for e in s.endpoints
    ]
    return "\n".join([answer, *lines])


@command("find", private=True)
async def find(c: Commands, call: Call) -> str:
    if not call.args:
        return c.usage("find WORDS")
    hits = c.state.search.search(call.args, limit=10)
    if not hits:
        return c.say("find_none", query=call.args[:100])
    lines = [c.say("find_header", count=len(hits), query=call.args[:100])]
    for hit in hits:
        link = c.chat.link(hit.chat_id, hit.message_id)
        day = time.strftime("%Y-%m-%d", time.localtime(hit.date))
        when = f'<a href="{escape(link)}">{day}</a>' if link else day
        lines.append(f"• {when} {escape(hit.snippet)}")
    return "\n".join(lines)


@command("help")
async def help_(c: Commands, call: Call) -> str:
    reaction = c.settings.react_to_transcribe
    return c.say("help") + ("\n" + c.say("help_reaction", reaction=reaction) if reaction else "")
