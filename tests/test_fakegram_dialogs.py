"""fakegram self-tests: dialog order (pinned first, then newest), pagination and the archive."""

from __future__ import annotations

import time

import pytest
from telethon import functions, types

from tests.fakegram import Fakegram

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


async def test_pinned_dialogs_come_first_then_newest(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    me = fakegram.user_of(bot)
    hour_ago = int(time.time()) - 3600
    quiet = fakegram.create_user("Quiet", username="quiet")
    old = fakegram.create_user("Old", username="old")
    new = fakegram.create_user("New", username="new")
    fakegram.send_message(quiet, me, "long ago", date=hour_ago - 86400)
    fakegram.send_message(old, me, "an hour ago", date=hour_ago)
    fakegram.send_message(new, me, "just now")
    group = fakegram.create_supergroup("Group", new, [me])
    fakegram.send_message(new, group, "now in the group", date=hour_ago + 60)
    fakegram.pin_dialog(me, quiet)

    dialogs = await bot.get_dialogs()

    assert [d.name for d in dialogs] == ["Quiet", "New", "Group", "Old"]
    assert [d.pinned for d in dialogs] == [True, False, False, False]
    assert dialogs[2].is_channel and dialogs[2].message.raw_text == "now in the group"
    fakegram.pin_dialog(me, old)  # the newest pin goes on top
    assert [d.name for d in await bot.get_dialogs(limit=2)] == ["Old", "Quiet"]


async def test_dialogs_are_paged_like_telegram(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    me = fakegram.user_of(bot)
    start = int(time.time()) - 10_000
    senders = [fakegram.create_user(f"User {n:03}") for n in range(130)]
    for n, sender in enumerate(senders):
        fakegram.send_message(sender, me, f"hello {n}", date=start + n)
    fakegram.pin_dialog(me, senders[0])

    names = [d.name async for d in bot.iter_dialogs()]

    # Telethon asks 100 at a time (client/dialogs.py _MAX_CHUNK_SIZE), then continues from the
    # last dialog's offset_date/offset_id/offset_peer with exclude_pinned.
    assert fakegram.calls["GetDialogsRequest"] == 2
    assert names == ["User 000", *(f"User {n:03}" for n in range(129, 0, -1))]
    first = await bot(functions.messages.GetDialogsRequest(
        offset_date=None, offset_id=0, offset_peer=types.InputPeerEmpty(), limit=10, hash=0))  # fmt: skip
    assert isinstance(first, types.messages.DialogsSlice) and first.count == 130 and len(first.dialogs) == 10
    assert first.dialogs[0].pinned and not first.dialogs[1].pinned
    assert (await bot.get_dialogs(limit=0)).total == 130


async def test_archived_dialogs_live_in_folder_1(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    me = fakegram.user_of(bot)
    alice = fakegram.create_user("Alice", username="alice")
    bob = fakegram.create_user("Bob", username="bob")
    fakegram.send_message(alice, me, "hi")
    fakegram.send_message(bob, me, "hi")
    fakegram.archive_dialog(me, bob)

    assert [d.name for d in await bot.get_dialogs(folder=0)] == ["Alice"]
    archived = await bot.get_dialogs(archived=True)
    assert [(d.name, d.folder_id) for d in archived] == [("Bob", 1)]
    assert {d.name for d in await bot.get_dialogs()} == {"Alice", "Bob"}  # no folder: all of them
    await bot.edit_folder("bob", 0)  # folders.editPeerFolders: unarchive
    assert {d.name for d in await bot.get_dialogs(folder=0)} == {"Alice", "Bob"}
