"""fakegram self-tests: message shapes and rules (view-once, edits, forwards, file references,
short updates, link previews, injected errors), driven by real Telethon clients."""

from __future__ import annotations

import os

import pytest
from telethon import events, functions, types
from telethon.errors import (
    ChatWriteForbiddenError,
    FileReferenceExpiredError,
    FloodPremiumWaitError,
    FloodWaitError,
    MessageAuthorRequiredError,
    MessageEditTimeExpiredError,
    MessageIdInvalidError,
    PeerFloodError,
    SlowModeWaitError,
)

from tests.fakegram import Fakegram
from tests.fakegram.records import EDIT_TIME_LIMIT
from tests.fakegram.testing import collect, input_peer, next_event, no_event

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


async def test_view_once_media_and_every_document_kind(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    inbox = collect(bot, events.NewMessage(incoming=True))
    alice = fakegram.create_user("Alice", username="alice")
    me = fakegram.user_of(bot)
    payload = os.urandom(3000)

    fakegram.send_message(alice, me, voice=payload, ttl_seconds=2**31 - 1)  # "view once"
    fakegram.send_message(alice, me, video_note=payload, ttl_seconds=10)
    fakegram.send_message(alice, me, audio=payload, duration=7)
    fakegram.send_message(alice, me, video=payload)
    fakegram.send_message(alice, me, document=payload, file_name="notes.pdf", mime_type="application/pdf")

    voice, note, audio, video, document = [(await next_event(inbox)).message for _ in range(5)]
    assert voice.voice and voice.media.ttl_seconds == 2**31 - 1 and voice.media_unread
    assert note.video_note and note.media.round and note.media.ttl_seconds == 10
    assert audio.audio and audio.file.duration == 7 and audio.media.ttl_seconds is None
    assert video.video and not video.video_note and video.media.video
    assert document.document and document.file.name == "notes.pdf" and not document.audio
    assert await voice.download_media(file=bytes) == payload  # downloadable, as on Telegram

    # Sent from a client (InputMediaUploadedDocument.ttl_seconds) it stays view-once too.
    alice_client = await fakegram.new_user("Carol", username="carol")
    await alice_client.send_file("voicebot", payload, voice_note=True, ttl=60,
                                 attributes=[types.DocumentAttributeAudio(duration=1, voice=True)])  # fmt: skip
    assert (await next_event(inbox)).message.media.ttl_seconds == 60


async def test_edit_rules(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    me = fakegram.user_of(bot)
    alice = fakegram.create_user("Alice", username="alice")
    payload = os.urandom(2000)
    theirs = fakegram.send_message(alice, me, "hers")
    with pytest.raises(MessageAuthorRequiredError):  # only one's own messages
        await bot.edit_message("alice", theirs, "mine now")

    old = await bot.send_message("alice", "old")
    fakegram.age_message(me, alice, old.id, EDIT_TIME_LIMIT)  # config.edit_time_limit = 48 h
    with pytest.raises(MessageEditTimeExpiredError):
        await bot.edit_message("alice", old.id, "too late")
    saved = await bot.send_message("me", "note to self")
    fakegram.age_message(me, me, saved.id, 10 * EDIT_TIME_LIMIT)
    assert (await bot.edit_message("me", saved.id, "saved messages never expire")).raw_text

    own_voice = fakegram.send_message(me, alice, voice=payload)
    assert (await bot.edit_message("alice", own_voice, "caption on a voice: fine")).raw_text
    own_note = fakegram.send_message(me, alice, video_note=payload)
    with pytest.raises(MessageIdInvalidError):  # round videos take no caption
        await bot.edit_message("alice", own_note, "caption on a video note")

    forwarded = await bot.forward_messages("alice", own_voice, "alice")  # messages.forwardMessages
    assert forwarded.fwd_from.from_id == types.PeerUser(me.id)
    with pytest.raises(MessageIdInvalidError):  # forwarded messages cannot be edited
        await bot.edit_message("alice", forwarded.id, "edit a forward")
    to_saved = await bot.forward_messages("me", theirs, "alice")
    header = to_saved.fwd_from
    assert (header.from_id, header.saved_from_peer, header.saved_from_msg_id) == (
        types.PeerUser(alice.id), types.PeerUser(alice.id), theirs)  # fmt: skip
    history = fakegram.history(alice, me)
    assert history[0].fwd_from.from_id == types.PeerUser(me.id)  # Alice got the forward too


async def test_channel_edit_rights(fakegram: Fakegram) -> None:
    owner = fakegram.create_user("Owner", username="owner")
    editor = await fakegram.new_user("Editor", username="editor")
    e = fakegram.user_of(editor)
    channel = fakegram.create_channel("News", owner, admins=[e])
    group = fakegram.create_supergroup("Club", owner, [e])
    fakegram.promote(group, e, rights=("delete_messages", "pin_messages"))
    post = fakegram.send_message(owner, channel, "the owner's post")
    in_group = fakegram.send_message(owner, group, "the owner's group message")

    # A channel admin with edit_messages edits anyone's post, with no time limit (TDLib can_edit_message).
    fakegram.age_message(owner, channel, post, 3 * EDIT_TIME_LIMIT)
    edited = await editor.edit_message(await input_peer(editor, channel), post, "fixed typo")
    assert edited.raw_text == "fixed typo"
    with pytest.raises(MessageAuthorRequiredError):  # in a group, nobody edits others' messages
        await editor.edit_message(await input_peer(editor, group), in_group, "changed")


async def test_stale_file_reference_is_refused_and_telethon_refetches(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    inbox = collect(bot, events.NewMessage(incoming=True))
    alice = fakegram.create_user("Alice", username="alice")
    payload = os.urandom(300_000)
    fakegram.send_message(alice, fakegram.user_of(bot), voice=payload)
    message = (await next_event(inbox)).message
    stale = message.media.document

    fakegram.expire_file_references()
    location = types.InputDocumentFileLocation(stale.id, stale.access_hash, stale.file_reference, "")
    with pytest.raises(FileReferenceExpiredError):
        await bot(functions.upload.GetFileRequest(location, offset=0, limit=4096))
    refetches = fakegram.calls["GetMessagesRequest"]
    # Telethon catches FILE_REFERENCE_EXPIRED, refetches the message and retries (client/downloads.py).
    assert await message.download_media(file=bytes) == payload
    assert fakegram.calls["GetMessagesRequest"] == refetches + 1
    with pytest.raises(FileReferenceExpiredError):  # re-sending by the stale reference fails too
        await bot.send_file("alice", stale)


async def test_text_messages_come_in_short_forms(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    bob = await fakegram.new_user("Bob", username="bob")
    raw = collect(bob, events.Raw)
    inbox = collect(bob, events.NewMessage(incoming=True))
    a, b = fakegram.user_of(alice), fakegram.user_of(bob)

    result = await alice(functions.messages.SendMessageRequest("bob", "short"))
    assert isinstance(result, types.UpdateShortSentMessage) and result.out  # the sender's result
    update = await next_event(raw)
    assert isinstance(update, types.UpdateShortMessage) and update.user_id == a.id
    event = await next_event(inbox)
    # No users attached: Telethon has no sender object until it fetches one.
    assert event.sender is None and event.sender_id == a.id
    assert (await event.get_sender()).username == "alice"

    group = fakegram.create_group("Trio", a, [b])  # a service message: a full update
    fakegram.send_message(a, group, "in the group")
    assert isinstance(await _raw_with_text(raw, "in the group"), types.UpdateShortChatMessage)
    event = await next_event(inbox)
    assert event.chat is None and (await event.get_chat()).title == "Trio"
    fakegram.send_message(a, b, "caption", voice=b"ogg")  # media never comes short
    assert isinstance(await _raw_with_text(raw, "caption"), types.UpdateNewMessage)


async def _raw_with_text(raw, text: str):
    """The next raw update carrying ``text`` (short forms have it at .message, others at .message.message)."""
    while True:
        update = await next_event(raw)
        message = getattr(update, "message", None)
        if text in (message, getattr(message, "message", None)):
            return update


async def test_link_preview_with_a_document(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    inbox = collect(bot, events.NewMessage(incoming=True))
    alice = fakegram.create_user("Alice", username="alice")
    clip = os.urandom(4000)

    fakegram.send_message(alice, fakegram.user_of(bot), "look https://example.com/clip",
                          link_preview="https://example.com/clip", preview_video=clip)  # fmt: skip

    message = (await next_event(inbox)).message
    assert isinstance(message.media, types.MessageMediaWebPage)
    assert message.web_preview.url == "https://example.com/clip"
    # Telethon's Message.document (and .video) fall back to the preview's document.
    assert message.document is not None and message.video is not None and message.voice is None
    assert await message.download_media(file=bytes) == clip


async def test_injected_errors_of_any_name(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice", flood_sleep_threshold=0)
    bob = fakegram.create_user("Bob", username="bob")
    carol = fakegram.create_user("Carol", username="carol")

    # Telethon itself refuses a request type it was told to wait for (client/users.py
    # _flood_waited_requests); forget that between injections to reach the server each time.
    forget = alice._flood_waited_requests.clear
    fakegram.inject_error("SendMessageRequest", "SLOWMODE_WAIT_5")
    with pytest.raises(SlowModeWaitError) as slow:
        await alice.send_message("bob", "x")
    forget()
    fakegram.inject_error("SendMessageRequest", "FLOOD_PREMIUM_WAIT_5")
    with pytest.raises(FloodPremiumWaitError) as premium:
        await alice.send_message("bob", "x")
    forget()
    fakegram.inject_error("SendMessageRequest", "FLOOD_WAIT_400")
    with pytest.raises(FloodWaitError) as flood:
        await alice.send_message("bob", "x")
    assert [e.value.code for e in (slow, premium, flood)] == [420, 420, 420]
    assert flood.value.seconds == 400
    forget()
    fakegram.inject_error("SendMessageRequest", "PEER_FLOOD")
    with pytest.raises(PeerFloodError) as peer_flood:
        await alice.send_message("bob", "x")
    assert peer_flood.value.code == 400

    # Only for one peer, and only the 2nd matching call.
    fakegram.inject_error("SendMessageRequest", "CHAT_WRITE_FORBIDDEN", peer=carol, nth=2)
    await alice.send_message("bob", "to bob")
    await alice.send_message("carol", "first to carol")
    await alice.send_message("bob", "to bob again")
    with pytest.raises(ChatWriteForbiddenError) as forbidden:
        await alice.send_message("carol", "second to carol")
    assert forbidden.value.code == 403
    await alice.send_message("carol", "third to carol")
    assert [m.message for m in fakegram.history(bob, fakegram.user_of(alice))] == ["to bob again", "to bob"]


async def test_forward_from_a_channel_and_service_messages(fakegram: Fakegram) -> None:
    bot = await fakegram.new_user("Bot", username="voicebot")
    me = fakegram.user_of(bot)
    owner = fakegram.create_user("Owner", username="owner")
    alice = fakegram.create_user("Alice", username="alice")
    channel = fakegram.create_channel("News", owner, [me])
    post = fakegram.send_message(owner, channel, "a post", voice=b"ogg")
    fakegram.send_message(alice, me, "hi")

    forwarded = await bot.forward_messages("alice", post, await input_peer(bot, channel))
    header = forwarded.fwd_from
    assert (header.from_id, header.channel_post) == (types.PeerChannel(channel.id), post)
    assert forwarded.voice is not None  # the media travels with it

    group = fakegram.create_group("Trio", me, [alice])
    created = fakegram.history(me, group)[0]
    assert isinstance(created, types.MessageService)
    with pytest.raises(MessageIdInvalidError):  # service messages cannot be edited
        await bot.edit_message(await input_peer(bot, group), created.id, "renamed")


async def test_a_reply_to_a_message_in_another_chat(fakegram: Fakegram) -> None:
    """inputReplyToMessage.reply_to_peer_id (core.telegram.org/api/reply): the reply names the
    other chat; a message that chat does not have is REPLY_MESSAGE_ID_INVALID."""
    bot = await fakegram.new_user("Bot", username="voicebot")
    alice = fakegram.create_user("Alice", username="alice")
    voice_id = fakegram.send_message(alice, fakegram.user_of(bot), voice=os.urandom(500))
    alice_peer = await bot.get_input_entity("alice")
    request = functions.messages.SendMessageRequest(
        peer=types.InputPeerSelf(),
        message="the transcript",
        reply_to=types.InputReplyToMessage(reply_to_msg_id=voice_id, reply_to_peer_id=alice_peer),
    )
    await bot(request)
    (saved,) = await bot.get_messages("me", limit=1)
    assert saved.reply_to.reply_to_msg_id == voice_id
    assert saved.reply_to.reply_to_peer_id == types.PeerUser(alice.id)
    request.reply_to = types.InputReplyToMessage(reply_to_msg_id=voice_id + 100, reply_to_peer_id=alice_peer)
    request.random_id = 12345
    with pytest.raises(Exception, match="REPLY_MESSAGE_ID_INVALID"):
        await bot(request)


async def test_a_request_resent_after_a_lost_answer_is_not_sent_twice(fakegram: Fakegram) -> None:
    """Telegram dedups by random_id ("required to prevent message resending",
    core.telegram.org/method/messages.sendMessage): the second try is RANDOM_ID_DUPLICATE."""
    from telethon.errors import RandomIdDuplicateError

    bot = await fakegram.new_user("Bot", username="voicebot", request_retries=1, raise_last_call_error=True)
    alice = await fakegram.new_user("Alice", username="alice")
    inbox = collect(alice, events.NewMessage(incoming=True))
    fakegram.lose_answers("SendMessageRequest", user=fakegram.user_of(bot))
    with pytest.raises(RandomIdDuplicateError):
        await bot.send_message("alice", "once")  # done, answer lost, re-sent on reconnect, refused
    assert (await next_event(inbox)).raw_text == "once"
    assert await no_event(inbox, 1.0)  # and only once
