"""fakegram: a loopback MTProto server for testing Telethon code without Telegram.

Real, unmodified Telethon clients connect to it on 127.0.0.1 with a pre-shared auth key
(TcpFull framing, MTProto 2.0 encryption, the pinned Telethon's TL layer).

Modules:

* :mod:`.mtproto` - framing, encryption, msg_id/seq_no (server side of Telethon's own code)
* :mod:`.world` - users, basic groups, per-user message boxes and pts, uploaded files
* :mod:`.rpc` - one handler per implemented TL method (``@handles(SomeRequest)``)
* :mod:`.server` - :class:`FakeTelegramServer`, fault injection, :class:`ServerThread`, CLI
* :mod:`.harness` - :class:`Fakegram`: the server plus ready-made ``TelegramClient``s
* :mod:`.plugin` - the ``fakegram`` pytest fixture

Typical test::

    async def test_voice(fakegram):
        alice = await fakegram.new_user("Alice", username="alice")    # connected client
        bot = fakegram.create_user("Voice Bot", username="voicebot")  # server-side only
        session = fakegram.session_string_for(bot)                    # for the bot process
        fakegram.send_message(fakegram.user("alice"), bot, voice=ogg_bytes, duration=2)
        fakegram.inject_flood_wait("SendMessageRequest", 3)
        fakegram.drop_connections(bot)
"""

from .harness import Fakegram
from .server import FakeTelegramServer
from .standalone import ServerThread
from .records import ChannelRecord, ChatRecord, FileRecord, RpcFail, UserRecord

__all__ = [
    "ChannelRecord",
    "ChatRecord",
    "FakeTelegramServer",
    "Fakegram",
    "FileRecord",
    "RpcFail",
    "ServerThread",
    "UserRecord",
]
