"""The bot against the Telegram the fake models from Telegram's own documentation (issue:
behave correctly on the real Telegram). One test per way the real network differs from a
naive one; docs/telegram.md lists each behaviour, its source and the test here.

Every assertion is on what people see in their Telegram (or on the bot staying up), so
the same tests can be pointed at an older bot to show what it got wrong.
"""

import asyncio
import time

import pytest
from telethon import types

from tests.fakegram.testing import marked

from .botharness import BotProcess, Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.wire
HELLO = (FIXTURES / "hello.ogg").read_bytes()
WEATHER = (FIXTURES / "weather.ogg").read_bytes()


def hello_in(text: str) -> bool:
    return wer(EXPECTED["hello.ogg"], text.split("\n")[-1]) <= 0.25


@pytest.fixture
async def alice(fakegram, running_bot):
    client = await fakegram.new_user("Alice", username="alice")
    await client.get_dialogs()
    return client, fakegram.user_of(client), Inbox(client, running_bot.id)


async def saved_messages(running_bot):
    """The owner's Saved Messages, seen from the owner's phone."""
    return Inbox(await running_bot.owner(), running_bot.id)


async def settle(inbox, seconds=1.5):
    """Give a duplicate or a stray message time to arrive before asserting there is none."""
    await asyncio.sleep(seconds)
    return inbox


# -- 1. a chat the bot cannot write in -------------------------------------------------------


@pytest.mark.bot_settings(TRANSCRIBE_GROUPS="1")
async def test_a_muted_group_neither_crash_loops_the_bot_nor_loses_the_voice(running_bot, alice, fakegram):
    """Muted in a group (CHAT_WRITE_FORBIDDEN): the transcript goes to Saved Messages, and a
    restart with that job unfinished starts normally instead of raising out of Bot.start."""
    client, alice_user, _ = alice
    group = fakegram.create_supergroup("Club", alice_user, [running_bot.user])
    fakegram.restrict(group, running_bot.user, send_messages=False)
    saved = await saved_messages(running_bot)
    fakegram.slow_get_file(2.0)  # the job is mid-download when the bot dies
    fakegram.send_message(alice_user, group, voice=HELLO, duration=5)
    while fakegram.calls["GetFileRequest"] == 0:  # noqa: ASYNC110 (polls the fake's counter)
        await asyncio.sleep(0.05)
    await running_bot.crash()
    fakegram.slow_get_file(0)
    await running_bot.start()  # raised CHAT_WRITE_FORBIDDEN here, on every restart
    await saved.wait(lambda: any(hello_in(t) for t in saved.texts.values()))
    await settle(saved)
    assert sum(hello_in(t) for t in saved.texts.values()) == 1
    assert fakegram.history(alice_user, group)[0].media is not None  # nothing posted in the group


# -- 2. voices that arrive while the bot starts -------------------------------------------------


async def test_a_voice_sent_while_the_bot_was_down_is_answered_even_if_backfill_cannot_run(
    fakegram, model_path, tmp_path
):
    """Telethon's catch-up (updates.getDifference from the saved state) replays it, and the
    handler is attached before the client connects, so nothing replayed is dropped. Here
    backfill is held back by a long flood wait on messages.getDialogs, as Telegram may."""
    owner = fakegram.create_user("Owner", username="owner")
    bot = await BotProcess(fakegram, owner, tmp_path / "bot", model_path).start()
    client = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(client, owner.id)
    await client.get_dialogs()
    try:
        first = await client.send_file("owner", FIXTURES / "hello.ogg", voice_note=True)
        await inbox.wait(lambda: transcribed(inbox, first.id))
        bot.process.terminate()
        await bot.process.wait()
        missed = await client.send_file("owner", FIXTURES / "weather.ogg", voice_note=True)
        fakegram.inject_flood_wait("GetDialogsRequest", 400, times=5)
        await bot.start()
        await inbox.wait(lambda: transcribed(inbox, missed.id), timeout=90)
        await settle(inbox)
        assert len(inbox.replies_to(missed.id)) == 1 and "sunny" in inbox.replies_to(missed.id)[0].lower()
        assert len(inbox.replies_to(first.id)) == 1
    finally:
        await bot.stop()


async def test_backfill_answers_an_older_voice_even_after_a_newer_one_was_seen(running_bot, alice, fakegram):
    """ "Already handled" is the journal's answer: one voice seen live says nothing about an
    older one that arrived while the bot was down (a high-water mark skipped it)."""
    client, alice_user, inbox = alice
    first = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, first.id))
    await running_bot.stop()
    missed = await client.send_file(running_bot.username, FIXTURES / "weather.ogg", voice_note=True)
    fakegram.inject_flood_wait("GetDialogsRequest", 3)  # backfill waits; a newer voice arrives live first
    await running_bot.start()
    newer = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, newer.id) and transcribed(inbox, missed.id), timeout=90)
    await settle(inbox)
    assert [len(inbox.replies_to(m.id)) for m in (first, missed, newer)] == [1, 1, 1]


# -- 3. view-once -------------------------------------------------------------------------------


async def test_view_once_voices_are_never_posted_cached_or_indexed(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    secret = await client.send_file(running_bot.username, FIXTURES / "weather.ogg", voice_note=True, ttl=10)
    normal = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, normal.id))  # it was handled after the secret one
    assert inbox.replies_to(secret.id) == []

    owner = await running_bot.owner()
    saved = await saved_messages(running_bot)
    await owner.get_input_entity("alice")
    (owners_copy,) = [m for m in await owner.get_messages(alice_user.id, limit=5) if m.media and m.media.ttl_seconds]
    await owner.send_message(alice_user.id, ".t", reply_to=owners_copy.id)  # on request: only to the owner
    await saved.wait(lambda: any("sunny" in t.lower() for t in saved.texts.values()))
    await settle(inbox)
    assert not any("sunny" in t.lower() for t in inbox.texts.values())  # Alice never sees its text
    assert next(i for i, t in inbox.first.items() if t == ".t") in inbox.deleted  # nor the .t
    await owner.send_message("me", ".find sunny")
    await saved.wait(lambda: any("🔎" in t for t in saved.texts.values()))
    assert any(t.startswith("🔎 nothing found") for t in saved.texts.values())  # never indexed


# -- 4. backfill and the dialog list -------------------------------------------------------------


async def test_a_quiet_pinned_chat_does_not_hide_voices_missed_while_down(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    bob = fakegram.create_user("Bob", username="bob")
    first = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, first.id))
    fakegram.send_message(bob, running_bot.user, "old news", date=int(time.time()) - 5 * 86400)
    fakegram.pin_dialog(running_bot.user, bob)  # pinned: listed first, though days old
    await running_bot.stop()
    missed = await client.send_file(running_bot.username, FIXTURES / "weather.ogg", voice_note=True)
    await running_bot.start()  # a new session: no catch-up, backfill alone must find it
    await inbox.wait(lambda: transcribed(inbox, missed.id), timeout=90)
    assert "sunny" in inbox.replies_to(missed.id)[0].lower()


# -- 5. private delivery across a restart -------------------------------------------------------


@pytest.mark.bot_settings(DELIVER_TO="saved")
async def test_private_mode_resumes_in_saved_messages_without_a_duplicate(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    saved = await saved_messages(running_bot)
    fakegram.slow_get_file(2.0)
    sent = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await saved.wait(lambda: saved.texts)  # the placeholder is in Saved Messages
    await running_bot.crash()
    fakegram.slow_get_file(0)
    await running_bot.start()
    await saved.wait(lambda: any(hello_in(t) for t in saved.texts.values()))
    await settle(saved)
    assert len(saved.texts) == 1 and hello_in(next(iter(saved.texts.values())))  # edited, not sent again
    assert inbox.replies_to(sent.id) == []


# -- 6. every error on the way out --------------------------------------------------------------


async def test_a_spam_limited_account_delivers_to_saved_messages(running_bot, alice, fakegram):
    """PEER_FLOOD: the account may not start chats; the transcript still reaches the owner."""
    client, alice_user, inbox = alice
    saved = await saved_messages(running_bot)
    fakegram.inject_error("SendMessageRequest", "PEER_FLOOD", times=50, user=running_bot.user, peer=alice_user)
    sent = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await saved.wait(lambda: any(hello_in(t) for t in saved.texts.values()))
    assert inbox.replies_to(sent.id) == []


@pytest.mark.bot_settings(TRANSCRIBE_GROUPS="1", ATTACH_TXT_ABOVE="20")
async def test_no_right_to_send_files_and_slow_mode(running_bot, alice, fakegram):
    """A group in slow mode (SLOWMODE_WAIT_X between the bot's own messages) where files are
    off (CHAT_SEND_DOCS_FORBIDDEN): the text arrives whole, once; transcript.txt is left out."""
    client, alice_user, _ = alice
    group = fakegram.create_supergroup("Club", alice_user, [running_bot.user], slow_mode=2)
    fakegram.restrict(group, running_bot.user, send_docs=False)
    await client.get_dialogs()
    inbox = Inbox(client, marked(group))
    voice = fakegram.send_message(alice_user, group, voice=WEATHER, duration=8)
    await inbox.wait(lambda: transcribed(inbox, voice))
    await settle(inbox, 3)
    (text,) = inbox.replies_to(voice)
    assert "sunny" in text.lower()
    assert [m.id for m in fakegram.history(alice_user, group) if m.media] == [voice]  # no file posted


async def test_a_lost_answer_is_not_sent_twice(running_bot, alice, fakegram):
    """The connection drops after Telegram stored the placeholder; Telethon re-sends the same
    request, Telegram answers RANDOM_ID_DUPLICATE, and the bot adopts the message it finds."""
    client, alice_user, inbox = alice
    fakegram.lose_answers("SendMessageRequest", user=running_bot.user)
    sent = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=90)
    await settle(inbox)
    (text,) = inbox.replies_to(sent.id)
    assert hello_in(text)


async def test_an_unknown_refusal_gives_up_with_the_reason_never_transcribing_forever(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    # The transcript's edit is refused, and so is the edit that would say why.
    fakegram.inject_error("EditMessageRequest", "SOMETHING_TELEGRAM_ADDS_LATER", times=2, user=running_bot.user)
    sent = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)

    def showing():
        return [t for i, t in inbox.texts.items() if inbox.reply_to.get(i) == sent.id and i not in inbox.deleted]

    await inbox.wait(lambda: showing() and showing()[0].startswith("⚠️"))
    await settle(inbox)
    (reason,) = showing()
    assert "SOMETHING_TELEGRAM_ADDS_LATER" in reason  # the stuck placeholder was replaced


async def test_an_expired_file_reference_is_refreshed(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    fakegram.slow_get_file(1.0)
    sent = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    while fakegram.calls["GetFileRequest"] == 0:  # noqa: ASYNC110 (polls the fake's counter)
        await asyncio.sleep(0.02)
    fakegram.expire_file_references()  # the next chunk names a stale reference
    fakegram.slow_get_file(0)
    await inbox.wait(lambda: transcribed(inbox, sent.id))
    assert hello_in(inbox.replies_to(sent.id)[0])


# -- 7. captions on the owner's own media --------------------------------------------------------


@pytest.mark.bot_settings(TRANSCRIBE_OUTGOING="1")
async def test_captions_only_where_telegram_allows_them(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    owner = await running_bot.owner()
    await owner.get_input_entity("alice")
    await owner.send_file("alice", FIXTURES / "video_note.mp4", video_note=True)
    old = await owner.send_file("alice", FIXTURES / "hello.ogg", voice_note=True)
    fakegram.age_message(running_bot.user, alice_user, old.id, 49 * 3600)  # past the 48 h edit window
    await owner.send_file("alice", FIXTURES / "hello.ogg", voice_note=True, caption="for you")
    await asyncio.sleep(0.5)
    received = [m for m in await client.get_messages(running_bot.username, limit=10) if m.media][::-1]
    note, aged, mine = (m.id for m in received)  # Alice's copies, in the order they were sent
    await inbox.wait(
        lambda: transcribed(inbox, note) and transcribed(inbox, aged) and hello_in(inbox.texts.get(mine, ""))
    )
    await settle(inbox)
    assert len(inbox.replies_to(note)) == 1  # a video note has no caption: a reply
    assert len(inbox.replies_to(aged)) == 1  # too old to edit: a reply
    assert inbox.texts[mine].startswith("for you\n\n🎙 ")  # the owner's caption stays first
    assert inbox.replies_to(mine) == []


# -- 8. channels and discussion groups ------------------------------------------------------------


@pytest.mark.bot_settings(TRANSCRIBE_CHANNELS="1", TRANSCRIBE_GROUPS="1")
async def test_channel_posts_are_answered_privately_and_their_discussion_copies_not_at_all(
    running_bot, alice, fakegram
):
    client, alice_user, _ = alice
    news = fakegram.create_channel("News", alice_user, admins=[running_bot.user])
    chat = fakegram.create_supergroup("News chat", alice_user, [running_bot.user])
    fakegram.link_discussion(news, chat)
    saved = await saved_messages(running_bot)
    post = fakegram.send_message(alice_user, news, voice=HELLO, duration=5)
    await saved.wait(lambda: any(hello_in(t) for t in saved.texts.values()))
    await settle(saved, 3)
    assert sum(hello_in(t) for t in saved.texts.values()) == 1  # the copy in the group got no answer
    channel = [m.id for m in fakegram.history(alice_user, news) if isinstance(m, types.Message)]
    assert channel == [post]  # nothing public in the channel
    assert all(m.fwd_from for m in fakegram.history(alice_user, chat) if m.media)  # only the auto-forward


# -- 9. answers that reveal other chats -----------------------------------------------------------


@pytest.mark.bot_settings(TRANSCRIBE_GROUPS="1")
async def test_find_in_a_group_answers_in_saved_messages(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    first = await client.send_file(running_bot.username, FIXTURES / "weather.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, first.id))
    group = fakegram.create_supergroup("Club", alice_user, [running_bot.user])
    owner = await running_bot.owner()
    await owner.get_dialogs()
    saved = await saved_messages(running_bot)
    await owner.send_message(types.PeerChannel(group.id), ".find sunny")
    await saved.wait(lambda: any("🔎" in t for t in saved.texts.values()))
    await asyncio.sleep(1)
    texts = [m.message for m in fakegram.history(alice_user, group)]
    assert not any("sunny" in (t or "").lower() or "🔎" in (t or "") for t in texts)


# -- 10. links, topics, previews ------------------------------------------------------------------


@pytest.mark.bot_settings(TRANSCRIBE_GROUPS="1")
async def test_a_reply_in_a_forum_topic_stays_in_the_topic(running_bot, alice, fakegram):
    client, alice_user, _ = alice
    forum = fakegram.create_supergroup("Forum", alice_user, [running_bot.user], forum=True)
    topic = fakegram.create_topic(forum, "Voices", alice_user)
    voice = fakegram.send_message(alice_user, forum, voice=HELLO, duration=5, reply_to=topic)
    await client.get_dialogs()
    inbox = Inbox(client, marked(forum))
    await inbox.wait(lambda: transcribed(inbox, voice))
    (answer,) = [m for m in fakegram.history(alice_user, forum) if m.reply_to and m.reply_to.reply_to_msg_id == voice]
    assert answer.reply_to.forum_topic and answer.reply_to.reply_to_top_id == topic


@pytest.mark.bot_settings(DELIVER_TO="saved", TRANSCRIBE_GROUPS="1")
async def test_private_answers_quote_the_voice_and_link_only_where_links_open(running_bot, alice, fakegram):
    client, alice_user, _ = alice
    saved = await saved_messages(running_bot)
    await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    group = fakegram.create_supergroup("Club", alice_user, [running_bot.user])
    fakegram.send_message(alice_user, group, voice=HELLO, duration=5)
    await saved.wait(lambda: sum(hello_in(t) for t in saved.texts.values()) == 2)
    owner = await running_bot.owner()
    answers = [m for m in await owner.get_messages("me", limit=10) if hello_in(m.raw_text)]
    urls = [e.url for m in answers for e in (m.entities or []) if isinstance(e, types.MessageEntityTextUrl)]
    assert not any("openmessage" in u for u in urls)  # Android-only
    assert any(u.startswith(f"https://t.me/c/{group.id}/") for u in urls)  # a supergroup has message links
    assert all(m.reply_to and m.reply_to.reply_to_peer_id for m in answers)  # each quotes its voice


@pytest.mark.bot_settings(TRANSCRIBE_VIDEO="1")
async def test_a_link_preview_is_not_a_video_to_transcribe(running_bot, alice, fakegram):
    client, alice_user, inbox = alice
    link = fakegram.send_message(
        alice_user,
        running_bot.user,
        "look https://example.com/v",
        link_preview="https://example.com/v",
        preview_video=HELLO,
    )
    probe = await client.send_file(running_bot.username, FIXTURES / "hello.ogg", voice_note=True)
    await inbox.wait(lambda: transcribed(inbox, probe.id))
    await settle(inbox)
    assert inbox.replies_to(link) == []


async def test_owner_commands_from_another_device_arrive_as_short_updates(running_bot, alice, fakegram):
    """updateShortMessage carries no users (core.telegram.org/constructor/updateShortMessage):
    the bot must reach the chat without them."""
    client, alice_user, inbox = alice
    owner = await running_bot.owner()
    await owner.get_input_entity("alice")
    await owner.send_message(alice_user.id, ".lang de")
    await inbox.wait(lambda: any("language for this chat: de" in t for t in inbox.texts.values()))
