"""Self-tests of the fakegram loopback server, driven by plain Telethon clients."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from telethon import TelegramClient, events, functions
from telethon.crypto import AuthKey
from telethon.errors import (
    AuthKeyNotFound,
    FileIdInvalidError,
    FloodWaitError,
    MessageNotModifiedError,
    MessageTooLongError,
    RPCError,
    UsernameNotOccupiedError,
)
from telethon.sessions import StringSession
from telethon.tl.types import DestroySessionNone, DocumentAttributeAudio

from tests.fakegram import Fakegram, ServerThread
from tests.fakegram.testing import EVENT_TIMEOUT_S, collect, next_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run in a separate process: log in with the session string argv[1], greet the user argv[2].
SEND_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from telethon import TelegramClient
    from telethon.sessions import StringSession

    async def main():
        async with TelegramClient(StringSession(sys.argv[1]), 1, 'x') as client:
            await client.send_message(sys.argv[2], 'hello from ' + (await client.get_me()).username)

    asyncio.run(main())
""")
# A minimal userbot: replies "echo: <text>" to every incoming message.
ECHO_BOT_SCRIPT = textwrap.dedent("""
    import sys
    from telethon import TelegramClient, events
    from telethon.sessions import StringSession

    client = TelegramClient(StringSession(sys.argv[1]), 1, 'x')

    @client.on(events.NewMessage(incoming=True))
    async def echo(event):
        await event.reply('echo: ' + event.raw_text)

    with client:
        client.run_until_disconnected()
""")


def make_ogg(path: Path) -> Path:
    """A real 2 s Opus voice note if ffmpeg is around, otherwise arbitrary bytes."""
    if shutil.which("ffmpeg"):
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=2",
                "-c:a",
                "libopus",
                "-y",
                str(path),
            ],
            check=True,
            timeout=30,
        )
    else:
        path.write_bytes(os.urandom(20_000))
    return path


async def test_get_me_and_resolve_username(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob_client = await fakegram.new_user("Bob", username="bob", last_name="Builder")

    me = await alice.get_me()
    assert me.id == fakegram.user("alice").id
    assert (me.username, me.first_name, me.is_self) == ("alice", "Alice", True)

    bob = await alice.get_entity("@bob")
    assert bob.id == fakegram.user_of(bob_client).id
    assert (bob.username, bob.last_name, bob.is_self) == ("bob", "Builder", False)
    full = await alice(functions.users.GetFullUserRequest("bob"))
    assert full.full_user.id == bob.id

    with pytest.raises(UsernameNotOccupiedError):
        await alice(functions.contacts.ResolveUsernameRequest("nobody"))


async def test_service_messages(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")

    assert (await alice(functions.PingRequest(ping_id=42))).ping_id == 42
    salts = await alice(functions.GetFutureSaltsRequest(num=1))
    assert len(salts.salts) == 1
    assert isinstance(await alice(functions.DestroySessionRequest(session_id=1234)), DestroySessionNone)


async def test_unknown_auth_key_is_rejected_like_telegram(fakegram: Fakegram) -> None:
    session = StringSession()
    session.set_dc(2, "127.0.0.1", fakegram.port)
    session.auth_key = AuthKey(os.urandom(256))  # e.g. a session from before a server restart
    client = TelegramClient(session, 1, "x")

    with pytest.raises(AuthKeyNotFound):
        await client.connect()


async def test_long_messages_are_gzipped_and_limited(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    text = ("transcript " * 400)[:4096]  # compressible: Telethon sends it as gzip_packed

    await alice.send_message("bob", text, parse_mode=None)
    assert (await next_event(inbox)).raw_text == text
    with pytest.raises(MessageTooLongError):
        await alice.send_message("bob", text + "x", parse_mode=None)


async def test_message_reply_and_edit(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    alice_id = (await alice.get_me()).id
    bob_inbox = collect(bob, events.NewMessage(incoming=True))
    alice_inbox = collect(alice, events.NewMessage(incoming=True))
    alice_edits = collect(alice, events.MessageEdited)

    sent = await alice.send_message("bob", "hello **bob**")
    assert sent.text == "hello **bob**" and sent.out

    received = await next_event(bob_inbox)
    assert received.raw_text == "hello bob"
    assert received.sender_id == alice_id
    assert received.is_private and received.chat_id == alice_id

    reply = await received.reply("hi alice")
    # Telegram answers a private text message with updateShortSentMessage, which has no reply
    # header: Telethon's returned message shows no reply (github.com/LonamiWebs/Telethon/issues/3803).
    assert reply.reply_to_msg_id is None
    assert fakegram.history(fakegram.user_of(bob), fakegram.user(alice_id))[0].reply_to.reply_to_msg_id == received.id

    at_alice = await next_event(alice_inbox)
    assert at_alice.raw_text == "hi alice"
    # Each side numbers messages on its own, so the reply points at Alice's copy.
    assert at_alice.message.reply_to_msg_id == sent.id
    assert (await at_alice.message.get_reply_message()).raw_text == "hello bob"

    edited = await reply.edit("hi alice (edited)")
    assert edited.raw_text == "hi alice (edited)"
    edit_event = await next_event(alice_edits)
    assert edit_event.id == at_alice.id
    assert edit_event.raw_text == "hi alice (edited)"
    assert edit_event.message.edit_date is not None

    with pytest.raises(MessageNotModifiedError):
        await reply.edit("hi alice (edited)")

    history = await bob.get_messages("alice", limit=10)
    assert [m.raw_text for m in history] == ["hi alice (edited)", "hello bob"]


@pytest.mark.parametrize("size", [0, 700 * 1024, 10 * 1024 * 1024 + 12_345], ids=["ogg", "700KiB", "10MiB-big"])
async def test_voice_note_roundtrip(fakegram: Fakegram, tmp_path: Path, size: int) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    if size:
        path = tmp_path / "voice.ogg"
        path.write_bytes(os.urandom(size))
    else:
        path = make_ogg(tmp_path / "voice.ogg")
    content = path.read_bytes()
    waveform = bytes(range(0, 250, 5))

    sent = await alice.send_file(
        "bob",
        path,
        voice_note=True,
        attributes=[DocumentAttributeAudio(duration=2, voice=True, waveform=waveform)],
    )
    assert sent.voice is not None

    event = await next_event(inbox)
    message = event.message
    assert message.voice is not None and message.media.voice
    assert message.file.size == len(content)
    assert message.file.mime_type == "audio/ogg"
    audio = next(a for a in message.voice.attributes if isinstance(a, DocumentAttributeAudio))
    assert audio.duration == 2 and audio.waveform == waveform

    target = tmp_path / "downloaded.ogg"
    assert await message.download_media(file=str(target)) == str(target)
    assert target.read_bytes() == content

    parts = -(-len(content) // (128 * 1024))  # Telethon uses 128 KiB parts below 100 MiB
    big = size > 10 * 1024 * 1024  # Telethon switches to saveBigFilePart above 10 MiB
    assert fakegram.calls["SaveBigFilePartRequest" if big else "SaveFilePartRequest"] == parts
    assert fakegram.calls["GetFileRequest"] >= parts


async def test_video_note(fakegram: Fakegram, tmp_path: Path) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    path = tmp_path / "note.mp4"
    path.write_bytes(os.urandom(50_000))

    await alice.send_file("bob", path, video_note=True)

    message = (await next_event(inbox)).message
    assert message.video_note is not None
    assert message.media.round
    assert message.voice is None
    assert await message.download_media(file=bytes) == path.read_bytes()


async def test_photo_roundtrip(fakegram: Fakegram, tmp_path: Path) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    path = tmp_path / "cat.jpg"
    path.write_bytes(os.urandom(30_000))

    await alice.send_file("bob", path, caption="a cat")

    message = (await next_event(inbox)).message
    assert message.photo is not None and message.raw_text == "a cat"
    assert await message.download_media(file=bytes) == path.read_bytes()


async def test_flood_wait_raises_without_threshold(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice", flood_sleep_threshold=0)
    await fakegram.new_user("Bob", username="bob")
    fakegram.inject_flood_wait("SendMessageRequest", 1)

    with pytest.raises(FloodWaitError) as excinfo:
        await alice.send_message("bob", "too fast")
    assert excinfo.value.seconds == 1
    assert (await alice.send_message("bob", "later")).raw_text == "later"


async def test_flood_wait_sleeps_and_succeeds(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    fakegram.inject_flood_wait(functions.messages.SendMessageRequest, 1)

    started = asyncio.get_running_loop().time()
    await alice.send_message("bob", "patient")
    assert asyncio.get_running_loop().time() - started >= 1
    assert (await next_event(inbox)).raw_text == "patient"
    assert fakegram.calls["SendMessageRequest"] == 2


async def test_other_sessions_of_sender_see_outgoing(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    await fakegram.new_user("Bob", username="bob")
    alice_desktop = fakegram.client_for(fakegram.user_of(alice))
    await alice_desktop.connect()
    outgoing = collect(alice_desktop, events.NewMessage(outgoing=True))
    own_echo = collect(alice, events.NewMessage(outgoing=True))

    sent = await alice.send_message("bob", "from my phone")

    echoed = await next_event(outgoing)
    assert (echoed.id, echoed.raw_text, echoed.out) == (sent.id, "from my phone", True)
    await asyncio.sleep(0.1)
    assert own_echo.empty()  # the sending session only gets the RPC result


async def test_reconnects_after_dropped_connections(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))

    assert fakegram.drop_connections() == 2
    await alice.send_message("bob", "still there?")

    assert (await next_event(inbox)).raw_text == "still there?"
    assert bob.is_connected() and fakegram.is_online(fakegram.user_of(bob))


async def test_update_pushed_while_reconnecting_is_recovered(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    bob_user = fakegram.user_of(bob)
    differences = fakegram.calls["GetDifferenceRequest"]

    fakegram.drop_connections(bob_user)
    # No await in between: Bob has no live connection when the message is sent.
    fakegram.send_message(fakegram.user_of(alice), bob_user, "sent during the outage")

    assert (await next_event(inbox)).raw_text == "sent during the outage"
    assert fakegram.calls["GetDifferenceRequest"] > differences


async def test_server_side_voice_message(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Voice Bot", username="voicebot")
    inbox = collect(bot, events.NewMessage(incoming=True))
    carol = fakegram.create_user("Carol", username="carol")  # no client at all
    ogg = os.urandom(5000)

    fakegram.send_message(carol, fakegram.user_of(bot), voice=ogg, duration=3)

    message = (await next_event(inbox)).message
    assert message.voice is not None and message.sender_id == carol.id
    assert await message.download_media(file=bytes) == ogg
    reply = await message.reply("transcript: ...")
    assert [m.message for m in fakegram.history(carol, fakegram.user_of(bot))] == ["transcript: ...", ""]
    assert fakegram.history(carol, fakegram.user_of(bot))[0].reply_to.reply_to_msg_id == 1
    assert fakegram.history(fakegram.user_of(bot), carol)[0].reply_to.reply_to_msg_id == message.id
    assert reply.reply_to_msg_id is None  # updateShortSentMessage carries no reply header


async def test_updates_missed_while_offline_are_fetched(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob_user = fakegram.create_user("Bob", username="bob")
    bob = fakegram.client_for(bob_user, catch_up=True)
    await bob.connect()
    inbox = collect(bob, events.NewMessage(incoming=True))
    await bob.disconnect()

    await alice.send_message("bob", "while you were away")
    await bob.connect()  # same session: getDifference returns the missed message

    assert (await next_event(inbox)).raw_text == "while you were away"


async def test_unknown_method_names_the_method(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")

    with pytest.raises(RPCError, match="METHOD_NOT_IMPLEMENTED_GetStatusesRequest"):
        await alice(functions.contacts.GetStatusesRequest())  # contacts.getContacts is implemented now
    assert (await alice.get_me()).username == "alice"  # the connection survives


async def test_pts_contiguity_30_messages(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    received: list[str] = []
    all_in = asyncio.Event()

    @bob.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        received.append(event.raw_text)
        if len(received) == 30:
            all_in.set()

    bob_entity = await alice.get_input_entity("bob")
    await asyncio.gather(*(alice.send_message(bob_entity, f"msg {i}") for i in range(30)))

    await asyncio.wait_for(all_in.wait(), EVENT_TIMEOUT_S)
    assert received == [f"msg {i}" for i in range(30)]
    bob_user = fakegram.user_of(bob)
    assert [e.pts for e in bob_user.events] == list(range(2, 32))


async def test_delete_and_read_history(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    deleted = collect(bob, events.MessageDeleted)
    read = collect(alice, events.MessageRead(inbox=False))
    inbox = collect(bob, events.NewMessage(incoming=True))

    keep = await alice.send_message("bob", "keep me")
    gone = await alice.send_message("bob", "delete me")
    bob_keep = (await next_event(inbox)).message
    bob_gone = (await next_event(inbox)).message

    dialogs = await bob.get_dialogs()
    assert [(d.name, d.unread_count, d.message.raw_text) for d in dialogs] == [("Alice", 2, "delete me")]

    await bob.send_read_acknowledge("alice", bob_keep)
    read_event = await next_event(read)
    assert read_event.max_id == keep.id and read_event.outbox

    await gone.delete()
    assert (await next_event(deleted)).deleted_ids == [bob_gone.id]
    assert [m.message for m in fakegram.history(fakegram.user_of(bob), fakegram.user_of(alice))] == ["keep me"]


async def test_basic_group(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    carol = await fakegram.new_user("Carol", username="carol")
    bob_inbox = collect(bob, events.NewMessage(incoming=True, func=lambda e: e.raw_text))
    carol_inbox = collect(carol, events.NewMessage(incoming=True, func=lambda e: e.raw_text))

    created = await alice(functions.messages.CreateChatRequest(users=["bob", "carol"], title="Voice club"))
    chat = created.updates.chats[0]
    await alice.send_message(chat, "welcome")

    for inbox in (bob_inbox, carol_inbox):
        event = await next_event(inbox)
        assert event.is_group and event.chat_id == -chat.id
        assert event.raw_text == "welcome" and event.sender_id == (await alice.get_me()).id
    group = fakegram.create_group("Server made", fakegram.user_of(bob), [fakegram.user_of(carol)])
    await carol.send_message(-group.id, "hi bob")
    event = await next_event(bob_inbox)
    # A short update (updateShortChatMessage) carries no chat: Telethon fetches it on demand.
    assert event.chat is None and (await event.get_chat()).title == "Server made"


async def test_fail_and_slow_get_file(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    inbox = collect(bob, events.NewMessage(incoming=True))
    payload = os.urandom(300_000)
    await alice.send_file("bob", payload, voice_note=True, attributes=[DocumentAttributeAudio(duration=1, voice=True)])
    message = (await next_event(inbox)).message

    fakegram.fail_get_file()
    with pytest.raises(FileIdInvalidError):
        await message.download_media(file=bytes)

    fakegram.fail_get_file(drop=True)
    fakegram.slow_get_file(0.2)
    started = asyncio.get_running_loop().time()
    assert await message.download_media(file=bytes) == payload
    assert asyncio.get_running_loop().time() - started >= 0.2 * 3  # three 128 KiB chunks


async def test_subprocess_bot_survives_kill_and_restart(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    inbox = collect(alice, events.NewMessage(incoming=True))
    bot = fakegram.create_user("Voice Bot", username="voicebot")
    session = fakegram.session_string_for(bot)  # reused by every bot process, like a saved session

    for attempt in ("first", "restarted"):
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", ECHO_BOT_SCRIPT, session)
        try:
            await fakegram.wait_online(bot, timeout=20)
            await alice.send_message("voicebot", attempt)
            event = await next_event(inbox)
            assert (event.raw_text, event.sender_id) == (f"echo: {attempt}", bot.id)
        finally:
            process.kill()  # SIGKILL: no clean disconnect
            await process.wait()
        for _ in range(100):  # the server notices the dead socket within moments
            if not fakegram.is_online(bot):
                break
            await asyncio.sleep(0.05)
        assert not fakegram.is_online(bot)


async def test_server_thread_serves_while_caller_blocks() -> None:
    with ServerThread() as thread:
        server = thread.server
        alice = thread.call(server.create_user, "Alice", username="alice")
        bot = thread.call(server.create_user, "Voice Bot", username="voicebot")
        # Blocking call on purpose: the server runs on its own loop.
        subprocess.run(  # noqa: ASYNC221
            [sys.executable, "-c", SEND_SCRIPT, thread.call(server.session_string_for, bot), "alice"],
            check=True,
            timeout=20,
        )
        history = thread.call(server.history, alice, bot)
        assert [m.message for m in history] == ["hello from voicebot"]


async def test_command_line_server() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakegram.server",
        "--user",
        "alice:Alice",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        info = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        client = TelegramClient(StringSession(info["users"]["alice"]["session"]), 1, "x")
        await client.connect()
        try:
            me = await client.get_me()
            assert (me.id, me.first_name) == (info["users"]["alice"]["id"], "Alice")
        finally:
            await client.disconnect()
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
