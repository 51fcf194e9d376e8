"""Test-facing harness: the fake server plus ready-made Telethon clients."""

from __future__ import annotations

import asyncio
from typing import Any

from telethon import TelegramClient
from telethon.sessions import StringSession

from .handshake import trust_server_key
from .server import FakeTelegramServer
from .world import UserRecord

API_ID = 1
API_HASH = "fakegram"
DISCONNECT_TIMEOUT_S = 5

# Clients made in this process may create auth keys with the fake, as with Telegram.
trust_server_key()


class Fakegram(FakeTelegramServer):
    """:class:`FakeTelegramServer` that also builds (and cleans up) Telethon clients.

    Example::

        async with Fakegram() as fakegram:
            alice = await fakegram.new_user("Alice", username="alice")   # connected client
            bot = fakegram.create_user("Voice Bot", username="voicebot")  # server-side only
            bot_client = fakegram.client_for(bot, sequential_updates=True)
            await bot_client.connect()
            env = {"TG_SESSION": fakegram.session_string_for(bot)}        # ...or a subprocess
    """

    def __init__(self, port: int = 0, *, short_updates: bool = True) -> None:
        super().__init__(port=port, short_updates=short_updates)
        self._clients: dict[TelegramClient, UserRecord] = {}

    def client_for(self, user: UserRecord, **client_kwargs: Any) -> TelegramClient:
        """A new, not yet connected ``TelegramClient`` logged in as ``user`` (own auth key).

        ``client_kwargs`` go to ``TelegramClient`` (e.g. ``flood_sleep_threshold=0``).
        The client is disconnected when the harness closes.
        """
        client = TelegramClient(StringSession(self.session_string_for(user)), API_ID, API_HASH, **client_kwargs)
        self._clients[client] = user
        return client

    def fresh_client(self, dc_id: int = 2, **client_kwargs: Any) -> TelegramClient:
        """A client of a fresh install on DC ``dc_id``: no auth key, not logged in (API_ID 1, "fakegram").

        Connecting runs the DH handshake; then it logs in like any app (auth.sendCode, QR...).
        """
        client = TelegramClient(self.fresh_session(dc_id), API_ID, API_HASH, **client_kwargs)
        self._clients[client] = None  # type: ignore[assignment]
        return client

    async def new_user(
        self,
        first_name: str = "User",
        username: str | None = None,
        *,
        last_name: str | None = None,
        bot: bool = False,
        **client_kwargs: Any,
    ) -> TelegramClient:
        """Create a user and return a connected, authorised client for it."""
        user = self.create_user(first_name, username, last_name=last_name, bot=bot)
        client = self.client_for(user, **client_kwargs)
        await client.connect()
        return client

    def user_of(self, client: TelegramClient) -> UserRecord:
        """The server-side record of a client made by this harness."""
        return self._clients[client]

    async def close(self) -> None:
        """Disconnect every client made here, then stop the server."""
        clients = [c for c in self._clients if c.is_connected()]
        try:
            if clients:
                await asyncio.wait_for(
                    asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True),
                    DISCONNECT_TIMEOUT_S,
                )
        finally:
            await self.stop()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
