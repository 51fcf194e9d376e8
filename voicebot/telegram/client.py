"""The Telethon client: made once from the settings, connected, and asked who is logged in.

Example::

    client = make_client(settings)
    me = await connect(client)        # NotLoggedIn: `python -m voicebot login` first
"""

from __future__ import annotations

from telethon import TelegramClient, errors, functions
from telethon.tl import types

from voicebot import __version__
from voicebot.config import Settings
from voicebot.errors import LOGIN_HINT, NotLoggedIn

from .errors import rpc_error


def make_client(settings: Settings, session: object | None = None) -> TelegramClient:
    """A client on the session file in the data dir (or on ``session``, e.g. a StringSession)."""
    return TelegramClient(
        session if session is not None else str(settings.session_path),
        settings.api_id,
        settings.api_hash,
        device_model="voicebot",
        app_version=__version__,
        # Every flood wait comes to TelethonChat._call, which counts, logs and bounds it.
        flood_sleep_threshold=0,
        # After its retries Telethon raises the last RPC error (RANDOM_ID_DUPLICATE, say), not a
        # bare ValueError that names nothing (client/users.py, _call).
        raise_last_call_error=True,
        # updates.getDifference from the state the session saved: what arrived while we
        # were down comes in as ordinary updates (client/updates.py, catch_up).
        catch_up=True,
    )


async def connect(client: TelegramClient) -> types.User:
    """Connect and return the account's user.

    Raises :class:`NotLoggedIn` (one line: how to log in) when the session has no logged-in
    account: never logged in, logged out, or terminated from another device (401
    AUTH_KEY_UNREGISTERED, SESSION_REVOKED…, core.telegram.org/api/errors#401-unauthorized).
    A bot never asks for a phone number: ``login`` does that, at a terminal.
    """
    await client.connect()
    me = await client.get_me()  # None on any 401 (client/users.py)
    if me is None:
        try:
            await client(functions.updates.GetStateRequest())  # to name Telegram's reason
            reason = ""
        except errors.RPCError as exc:
            reason = f" ({rpc_error(exc).name})"
        await client.disconnect()
        raise NotLoggedIn(f"not logged in{reason}: {LOGIN_HINT}")
    return me
