"""The one place that wires the core together: the pipeline, the owner's controls on its ports,
and the dispatcher in front of them (used by :mod:`voicebot.app` and by the tests).

Example::

    core = build_core(settings, engine, chat, TempDir(settings.temp_dir), state, owner_id=me.id)
    core.pipeline.start()
    await core.dispatch.on_message(incoming)
"""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.config import Settings
from voicebot.core.controls.commands import Commands
from voicebot.core.controls.reaction_poll import ReactionPoll
from voicebot.core.controls.reactions import Reactions
from voicebot.core.dispatch import Dispatch
from voicebot.core.pipeline import Pipeline
from voicebot.core.ports import Chat, Writer
from voicebot.engine.base import Transcriber
from voicebot.llm.client import LlmClient
from voicebot.state import State
from voicebot.storage import TempDir


@dataclass(frozen=True)
class Core:
    pipeline: Pipeline
    dispatch: Dispatch
    poll: ReactionPoll  # the owner's reactions, looked for (run it as a task)


def build_core(
    settings: Settings,
    engine: Transcriber,
    chat: Chat,
    temp: TempDir,
    state: State,
    *,
    owner_id: int | None = None,
    workers: int = 1,
    writer: Writer | None = None,
) -> Core:
    """A pipeline on ``engine`` and ``chat``, with the commands and reactions routed to it;
    ``writer``: the LLM for summaries and translations (by default, ``LLM_URL``'s, if set)."""
    writer = writer if writer is not None else llm_for(settings)
    pipeline = Pipeline(settings, engine, chat, temp, state, owner_id=owner_id, workers=workers, writer=writer)
    return Core(pipeline, *controls_for(pipeline))


def dispatch_for(pipeline: Pipeline) -> Dispatch:
    """The owner's controls on ``pipeline``'s ports, and the dispatcher in front of them all."""
    return controls_for(pipeline)[0]


def controls_for(pipeline: Pipeline) -> tuple[Dispatch, ReactionPoll]:
    """The dispatcher, and the reaction poll watching the recordings it does not answer."""
    settings, chat, state, owner_id = pipeline.settings, pipeline.chat, pipeline.state, pipeline.owner_id
    commands = Commands(
        settings, chat, state, pipeline.say, admit=pipeline, status=pipeline, owner_id=owner_id, extras=pipeline.extras
    )
    reactions = Reactions(settings.react_to_transcribe, chat, state.journal, admit=pipeline)
    poll = ReactionPoll(reactions, chat, state.journal, interval=settings.reaction_poll_s)
    return Dispatch(settings.command_prefix, owner_id, commands, reactions, admit=poll.watching(pipeline)), poll


def llm_for(settings: Settings) -> Writer | None:
    """The LLM client of ``LLM_URL``, or ``None`` when none is set (nothing leaves the machine)."""
    if not settings.llm_url:
        return None
    return LlmClient(settings.llm_url, settings.llm_model, settings.llm_api_key or None, settings.llm_timeout_seconds)
