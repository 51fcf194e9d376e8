"""The Telethon client: made once from the settings, connected, asked who is logged in, and
kept connected.

Example::

    client = make_client(settings)
    me = await connect(client)        # NotLoggedIn: `python -m voicebot login` first
    await stay_connected(client)      # never returns: cancel it to stop
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NoReturn

from loguru import logger
from telethon import TelegramClient, errors, functions, utils
from telethon.tl import types

from voicebot import __version__
from voicebot.config import Settings
from voicebot.errors import LOGIN_HINT, NotLoggedIn, Unreachable

from .errors import rpc_error

RECONNECT_FIRST_S = 1.0  # our own retries, once Telethon's are spent: 1 s, 2 s, 4 s … 60 s
RECONNECT_MAX_S = 60.0


class Client(TelegramClient):
    """Telethon's client, telling :func:`watch_channel_gaps` of the gaps it gives up on. Its
    update loop asks for a channel's difference through ``self(...)`` (client/updates.py), so
    the answer passes here; nothing else changes."""

    on_channel_gap: Callable[[int | None], None] | None = None

    async def __call__(self, request, *args, **kwargs):
        result = await super().__call__(request, *args, **kwargs)
        if self.on_channel_gap is not None:
            if isinstance(result, types.updates.ChannelDifferenceTooLong):
                self.on_channel_gap(utils.get_peer_id(types.PeerChannel(request.channel.channel_id)))
            elif isinstance(result, types.updates.DifferenceTooLong):  # the account's own: every chat
                self.on_channel_gap(None)
        return result


def make_client(settings: Settings, session: object | None = None) -> Client:
    """A client on the session file in the data dir (or on ``session``, e.g. a StringSession)."""
    return Client(
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
    reason = ""
    try:
        await client.connect()
        keep_update_state(client)  # before any await: no update of this start is handled yet
        me = await client.get_me()  # None on any 401 (client/users.py)
        if me is None:
            try:
                await client(functions.updates.GetStateRequest())  # to name Telegram's reason
            except errors.RPCError as exc:
                reason = f" ({rpc_error(exc).name})"
    except (ConnectionError, OSError, TimeoutError) as exc:  # Telethon's retries are spent
        raise Unreachable(f"Telegram is unreachable ({type(exc).__name__}: {exc})") from None
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # we are being stopped
            raise
        # Not us: Telethon's update loop met the 401 first and disconnected, cancelling our
        # request (client/updates.py, _update_loop; a lost network fails it with ConnectionError).
        me = None
    if me is None:
        await client.disconnect()
        raise NotLoggedIn(f"not logged in{reason}: {LOGIN_HINT}")
    return me


def keep_update_state(client: TelegramClient) -> None:
    """Save the update state this connection starts from in the session file, now.

    A session without saved state (made without ``login``, or whose every start so far was
    killed) starts from Telegram's current state (``updates.getState`` in ``_on_login``,
    client/auth.py), and Telethon saves its state only on a clean disconnect or a minute's
    keepalive (``_save_states_and_entities``, client/telegrambaseclient.py, client/updates.py).
    A kill -9 before either left nothing, so the next start began from *its* current state,
    and voices this one had been pushed but not yet journaled were history, not updates:
    lost for good, as backfill skips what looks like the very first start. Saved now, the
    next start's catch-up (``updates.getDifference``, core.telegram.org/api/updates) replays
    everything since; the journal answers what was already handled.

    Called straight after ``connect()``, before any await: the update loop has not run yet,
    so no update past this state was handed to a handler (a state saved after one had been
    would skip it on the next start). A session with saved state just saves it again.
    """
    box = client._message_box  # Telethon keeps it private; the session has no public setter for it
    if box.is_empty():  # not logged in: no state to keep
        return
    ss, cs = box.session_state()
    client.session.set_update_state(0, types.updates.State(**ss, unread_count=0))
    for channel_id, pts in cs.items():
        client.session.set_update_state(channel_id, types.updates.State(pts, 0, ss["date"], 0, unread_count=0))
    client.session.save()


def watch_channel_gaps(client: TelegramClient, on_gap: Callable[[int | None], None]) -> None:
    """Call ``on_gap(chat_id)`` whenever Telegram answers a channel's catch-up with
    ``channelDifferenceTooLong`` (more than the 100 events Telethon asks for: _updates/messagebox.py),
    and ``on_gap(None)`` for the account's ``differenceTooLong``. Telethon applies both by moving
    the pts on and returning no messages at all: whatever was in the gap is the caller's to find
    (backfill). ``client`` must come from :func:`make_client`."""
    client.on_channel_gap = on_gap


async def seed_channel_states(client: TelegramClient) -> int:
    """Read the whole dialog list once, right after sign-in, so Telethon stores every channel's pts;
    returns how many channels it holds.

    Telethon's ``_on_login`` loads only the account's state (client/auth.py), and it catches a
    channel up only from a pts it stored: for one it has none of, ``updateChannelTooLong`` is
    ignored (_updates/messagebox.py, ``try_begin_get_diff``). Each dialog of ``messages.getDialogs``
    carries its channel's pts, which Telethon's dialog iterator stores (client/dialogs.py,
    ``try_set_channel_state``); the disconnect after login writes them to the session. Without
    this, nothing sent in a supergroup between ``login`` and the first ``run`` is caught up."""
    channels = 0
    try:
        async for dialog in client.iter_dialogs():
            channels += bool(dialog.is_channel)
    except errors.RPCError as exc:  # backfill still covers what this would
        logger.warning("could not read the dialog list after login: {}", rpc_error(exc).name)
    except ConnectionError as exc:
        logger.warning("could not read the dialog list after login: {}", exc)
    return channels


async def stay_connected(
    client: TelegramClient,
    *,
    on_back: Callable[[float], None] | None = None,
    first_delay: float = RECONNECT_FIRST_S,
    max_delay: float = RECONNECT_MAX_S,
) -> NoReturn:
    """Keep the connected ``client`` connected, however long Telegram is away; never returns.

    Cancel it for a requested stop. It raises only what reconnecting cannot cure:
    :class:`NotLoggedIn` (the session was logged out or its key is unknown to Telegram).

    Telethon reconnects by itself, but not for long: ``MTProtoSender._reconnect``
    (network/mtprotosender.py) makes ``connection_retries`` attempts (default 5, each a
    ``_connect`` of as many tries ``retry_delay`` = 1 s apart), then ``_disconnect(error=...)``
    resolves ``client.disconnected`` with the ConnectionError, and ``run_until_disconnected``
    (client/updates.py) returns: about 35 s of refused connections and the bot was over. Its
    loop has a fixed delay and no word of the state, so a short blip stays Telethon's (pending
    requests are re-sent), and from its give-up on this loop reconnects with a capped backoff,
    one log line when Telegram is lost and one when it is back. ``on_back`` runs then, with
    the seconds Telegram was away.
    """
    # No updates.getState first, as run_until_disconnected sends: connect() with catch_up=True
    # already asks for the difference (client/updates.py, _update_loop), and a disconnect would
    # cancel that request under us.
    while True:
        try:
            await client.disconnected
            reason = "the connection closed"
        except errors.AuthKeyNotFound:
            raise NotLoggedIn(f"Telegram no longer knows this session's key: {LOGIN_HINT}") from None
        except Exception as exc:  # ConnectionError: Telethon's own reconnection gave up
            reason = f"{type(exc).__name__}: {exc}"
        lost = time.monotonic()
        logger.warning(
            "Telegram unreachable ({}); reconnecting, {:.0f} s to {:.0f} s apart", reason, first_delay, max_delay
        )
        # Ends the old update and keepalive loops before a new connect() starts its own
        # (client/telegrambaseclient.py, _disconnect_coro); the session keeps the update state.
        await client.disconnect()
        delay = first_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await connect(client)  # NotLoggedIn (401) leaves from here
                break
            except Unreachable as exc:
                logger.debug("still unreachable after {:.0f} s: {}", time.monotonic() - lost, exc)
                delay = min(delay * 2, max_delay)
        away = time.monotonic() - lost
        logger.info("Telegram back after {:.0f} s", away)
        if on_back is not None:
            on_back(away)
