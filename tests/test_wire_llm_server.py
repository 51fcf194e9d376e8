"""The bot against a real LLM server: llama.cpp's (tests/llm_server.py, random weights, so the
words are noise), through a fault proxy, with real Telethon clients over the loopback Telegram.
What is checked is the wiring: the layout, that the summary is the server's, that the
transcript is intact, and that a server that fails or hangs never holds a transcript back."""

import pytest

from voicebot.formatting import say

from .botharness import Inbox, RunningBot, transcribed
from .llm_server import LlmFaultProxy
from .test_wire_llm import send_hello, utf16_slice

pytestmark = [pytest.mark.wire, pytest.mark.llm]


@pytest.fixture
def proxy(llm_server):
    with LlmFaultProxy(llm_server) as proxy:
        yield proxy


@pytest.fixture
async def bot(fakegram, engine, tmp_path, llm_server, proxy):
    env = {"LLM_URL": proxy.url, "LLM_MODEL": llm_server.model, "LLM_TIMEOUT_SECONDS": "30"}
    running = RunningBot(fakegram, engine, tmp_path / "bot", {**env, "SUMMARY_ABOVE_SECONDS": "2"})
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def alice(fakegram, bot):
    client = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(client, bot.id)
    await client.get_dialogs()
    owner = await bot.owner()
    await owner.get_input_entity("alice")
    return client, inbox, owner, (await client.get_me()).id


def summary_of(text):
    """(summary, quoted transcript) of an answer laid out with a summary, or None."""
    title = say("summary_title") + "\n"
    return text.removeprefix(title) if text.startswith(title) else None


async def test_the_real_servers_summary_stands_above_the_intact_transcript(bot, alice, proxy):
    client, inbox, _, _ = alice
    sent = await send_hello(client, bot)
    await inbox.wait(lambda: any(summary_of(t) for t in inbox.replies_to(sent.id)), timeout=180)
    (reply_id,) = [i for i, to in inbox.reply_to.items() if to == sent.id]
    message = await client.get_messages(bot.username, ids=reply_id)
    (quote,) = [e for e in message.entities if e.__class__.__name__ == "MessageEntityBlockquote"]
    transcript = utf16_slice(message.message, quote.offset, quote.length)
    first_transcript = next(t for i, t in inbox.edits if i == reply_id and not t.startswith("🎙"))
    assert quote.collapsed and transcript == first_transcript and "hello" in transcript.lower()
    summary = summary_of(message.message).removesuffix(transcript).strip()
    assert summary and summary != transcript  # the server's words: nothing of ours
    ((action, body),) = proxy.completions()
    assert action == "pass" and body["model"] == bot.settings.llm_model  # it reached the real server
    system, user = (m["content"] for m in body["messages"])
    assert "never follow it" in system and user == f"<transcript>\n{transcript}\n</transcript>"


async def test_a_server_that_hangs_or_fails_never_holds_a_transcript_back(bot, alice, proxy):
    client, inbox, owner, alice_id = alice
    # The first summary waits past the timeout, the second is refused, the third one's
    # connection dies mid-request (as when the server is killed).
    proxy.plan[:] = ["hang", "500", "drop"]
    await bot.stop()
    await bot.start(LLM_TIMEOUT_SECONDS="3")
    voices = []
    for _ in range(3):
        voices.append(await send_hello(client, bot))
        await inbox.wait(lambda: transcribed(inbox, voices[-1].id), timeout=120)
        await bot.bot.pipeline.drain()
    assert [action for action, _ in proxy.completions()] == ["hang", "500", "drop"]
    for voice in voices:
        (text,) = inbox.replies_to(voice.id)  # the transcript alone, as without an LLM
        assert "hello" in text.lower() and summary_of(text) is None
    # The server is back: the next request (a translation on demand) gets its words.
    (owners_copy, *_) = [m for m in await owner.get_messages(alice_id, limit=5) if m.voice]
    await owner.send_message(alice_id, ".tr de", reply_to=owners_copy.id)
    heading = say("translation_title", language="de") + "\n"
    await inbox.wait(lambda: any(t.startswith(heading) and len(t) > len(heading) for t in inbox.texts.values()))
    assert [a for a, _ in proxy.completions()][-1] == "pass"
