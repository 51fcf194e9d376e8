"""The Telegram adapter: the only place in voicebot that imports Telethon.

It turns Telethon messages into :mod:`voicebot.messages` data and implements the core's
:class:`~voicebot.core.ports.Chat` with a ``TelegramClient``. Every RPC error leaves as a
:class:`~voicebot.errors.TelegramError` named as Telegram names it (:mod:`.errors`), so what
it means is decided in the core. It imports only :mod:`voicebot.messages`,
:mod:`voicebot.errors` and :mod:`voicebot.config`: never the core, the engines or the state.

- :mod:`.client`: make_client, connect (NotLoggedIn, Unreachable), stay_connected, seed_channel_states,
  watch_channel_gaps
- :mod:`.convert`: Telethon message → IncomingMessage; input peers as journal text
- :mod:`.errors`: Telethon's exceptions → TelegramError
- :mod:`.chat`: TelethonChat, the Chat port, flood waits
- :mod:`.updates`: attach, detach, read_reaction
- :mod:`.login`: TelethonLogin, the login steps for :mod:`voicebot.login`

Example::

    client = make_client(settings)
    handlers = attach(client, intake.message, intake.reaction)   # before connecting: nothing slips past
    me = await connect(client)                   # NotLoggedIn: `python -m voicebot login` first
    chat = TelethonChat(client, me.id)
    await stay_connected(client, on_back=...)   # reconnects forever; cancel it to stop
"""

from .chat import MAX_FLOOD_WAIT, TelethonChat
from .client import connect, make_client, seed_channel_states, stay_connected, watch_channel_gaps
from .convert import describe
from .login import TelethonLogin
from .updates import attach, detach, read_reaction

__all__ = [
    "MAX_FLOOD_WAIT",
    "TelethonChat",
    "TelethonLogin",
    "attach",
    "connect",
    "describe",
    "detach",
    "make_client",
    "read_reaction",
    "seed_channel_states",
    "stay_connected",
    "watch_channel_gaps",
]
