"""pytest plugin providing the ``fakegram`` fixture.

Load it from a conftest with ``pytest_plugins = ["tests.fakegram.plugin"]``::

    async def test_echo(fakegram):
        alice = await fakegram.new_user("Alice", username="alice")
        bob = await fakegram.new_user("Bob", username="bob")
        await alice.send_message("bob", "hi")
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .harness import Fakegram


@pytest_asyncio.fixture(loop_scope="function")
async def fakegram() -> AsyncIterator[Fakegram]:
    """A running fake Telegram server on 127.0.0.1 (function scoped).

    Clients made through it are disconnected and the server is stopped at teardown.
    """
    harness = await Fakegram().start()
    try:
        yield harness
    finally:
        await harness.close()
