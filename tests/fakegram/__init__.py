"""fakegram: a loopback MTProto server for testing Telethon code without Telegram.

Real, unmodified Telethon clients connect to it on 127.0.0.1 (TcpFull framing, MTProto 2.0
encryption, the pinned Telethon's TL layer), with a pre-shared, logged-in auth key, or as a
fresh install that creates its key by the MTProto DH handshake and logs in. It refuses what
Telegram refuses, with Telegram's error names and codes; every rule cites its source
(core.telegram.org, TDLib or Telethon) where it is modelled.

Modules:

* :mod:`.mtproto`, :mod:`.connection` - framing, encryption, msg_id/seq_no, service messages
* :mod:`.handshake` - the server side of the auth key creation (a test-only RSA key, trusted by
  :func:`.handshake.trust_server_key`, or in a child process by putting ``trusting/`` on its
  ``PYTHONPATH``); :mod:`.logins` - phone codes, 2FA (SRP), QR tokens, sessions
* :mod:`.records` - users, basic groups, channels, participants, topics, messages, files
* :mod:`.world` - peers, the account update log (pts, getDifference); behaviour by concern in
  :mod:`.views` (TL rendering), :mod:`.messages`, :mod:`.edits`, :mod:`.channels`,
  :mod:`.dialogs`, :mod:`.files`, :mod:`.reactions`
* :mod:`.rpc`, :mod:`.rpc_messages`, :mod:`.rpc_search`, :mod:`.rpc_channels`, :mod:`.rpc_files`,
  :mod:`.rpc_auth` - one handler per implemented TL method (``@handles(SomeRequest)``)
* :mod:`.server` - :class:`FakeTelegramServer`; :mod:`.scenario` (shaping the world) and
  :mod:`.faults` (error injection) are mixed into it; :mod:`.standalone` - thread and command
* :mod:`.harness` - :class:`Fakegram`: the server plus ready-made ``TelegramClient``s
* :mod:`.plugin` - the ``fakegram`` pytest fixture; :mod:`.testing` - event helpers

What it models:

* private chats and basic groups (per-user message ids and pts), text messages in the short
  forms ``updateShortMessage``/``updateShortChatMessage``/``updateShortSentMessage`` (no users
  attached: Telethon's ``message.sender``/``chat`` stay None until fetched);
  ``Fakegram(short_updates=False)`` sends full ``updates`` instead;
* supergroups, forums and broadcast channels: one message id sequence and one pts per channel,
  ``updateNewChannelMessage``/``Edit``/``DeleteChannelMessages``, ``updates.getChannelDifference``
  (missed channel messages come as ``updateChannelTooLong`` in the account difference; a gap past
  ``limit`` is ``channelDifferenceTooLong``, an account gap past ``pts_total_limit`` or
  :meth:`limit_difference` ``differenceTooLong``), ``messages.search`` with media filters,
  ``channels.getMessages/getChannels/getFullChannel/getParticipant/deleteMessages/readHistory``,
  ``contacts.resolveUsername`` of public channels, discussion groups with auto-forwarded posts;
* who may write: channel subscribers (CHAT_ADMIN_REQUIRED), restricted members
  (CHAT_WRITE_FORBIDDEN, CHAT_SEND_PLAIN/MEDIA/DOCS/VOICES/..._FORBIDDEN), banned users
  (CHANNEL_PRIVATE), spam-limited accounts (USER_BANNED_IN_CHANNEL), slow mode
  (420 SLOWMODE_WAIT_X, admins exempt, edits free), closed topics (406 TOPIC_CLOSED), blocks
  (YOU_BLOCKED_USER; a blocked user's messages silently never arrive, a bot gets USER_IS_BLOCKED),
  deleted accounts (INPUT_USER_DEACTIVATED; their own sessions get 401 USER_DEACTIVATED);
* edits: own messages only (MESSAGE_AUTHOR_REQUIRED), 48 h (MESSAGE_EDIT_TIME_EXPIRED) except in
  Saved Messages, no edits of forwards, round videos or service messages, channel edit rights;
* anonymous admins and ``send_as`` (``from_id`` is the group/channel), view-once media
  (``ttl_seconds``), link previews carrying a document, ``messages.forwardMessages``;
* dialogs pinned first then by top-message date, paged with ``messages.dialogsSlice``, archive;
* file references that expire (FILE_REFERENCE_EXPIRED), upload/download limits;
* logging in: the DH handshake, ``auth.sendCode``/``signIn`` (code in the app from 777000 or by
  SMS; PHONE_NUMBER_INVALID, PHONE_CODE_INVALID/EXPIRED, API_ID_INVALID), two-step verification
  (SESSION_PASSWORD_NEEDED, ``account.getPassword``, SRP ``auth.checkPassword``,
  PASSWORD_HASH_INVALID), QR login (``auth.exportLoginToken``/``acceptLoginToken``,
  ``updateLoginToken``), sessions (``account.getAuthorizations``/``resetAuthorization``; a
  terminated key gets 401 AUTH_KEY_UNREGISTERED);
* reactions: ``messages.sendReaction`` (standard emoji only, one per user), ``updateMessageReactions``
  to the author; to the reactor's other sessions nothing, a push or an edit, per chat kind
  (``tell_reactor``); ``message.reactions`` per viewer, ``messages.getMessagesReactions``;
* any RPC error by injection, with Telegram's code (420 for the flood family).

Typical test::

    async def test_voice(fakegram):
        alice = await fakegram.new_user("Alice", username="alice")    # connected client
        bot = fakegram.create_user("Voice Bot", username="voicebot")  # server-side only
        session = fakegram.session_string_for(bot)                    # for the bot process
        fakegram.send_message(fakegram.user("alice"), bot, voice=ogg_bytes, duration=2)
        fakegram.inject_flood_wait("SendMessageRequest", 3)
        fakegram.drop_connections(bot)

Shaping the world (all on the server, no client needed; refusals raise :class:`RpcFail`)::

    group = fakegram.create_supergroup("Club", alice, [bob, bot], slow_mode=30, username="club")
    forum = fakegram.create_supergroup("Forum", alice, [bot], forum=True)
    topic = fakegram.create_topic(forum, "Voices", alice)       # -> top_msg_id
    fakegram.close_topic(forum, topic)
    news = fakegram.create_channel("News", alice, [bot], admins=[bob], username="news")
    fakegram.link_discussion(news, group)                       # posts auto-forwarded into group
    fakegram.promote(group, bob, anonymous=True, rank="mod")    # bob posts as the group
    fakegram.restrict(group, bot, send_plain=False)             # CHAT_SEND_PLAIN_FORBIDDEN
    fakegram.ban(group, bot)                                    # CHANNEL_PRIVATE
    fakegram.block(alice, bot); fakegram.delete_account(alice); fakegram.limit_account(bot)
    fakegram.pin_dialog(bot, alice); fakegram.archive_dialog(bot, news)
    fakegram.tell_reactor("edit", "private")                   # the reactor's other sessions get an edit
    fakegram.send_message(alice, bot, voice=ogg, ttl_seconds=2**31 - 1)   # view-once
    fakegram.send_message(alice, bot, video_note=mp4, date=time.time() - 3 * 86400)
    fakegram.send_message(alice, forum, "in topic", reply_to=topic)
    fakegram.send_message(alice, bot, "see https://x.y/v", link_preview="https://x.y/v", preview_video=mp4)
    fakegram.send_message(alice, group, "as my channel", send_as=news)
    fakegram.forward(bot, alice, news, post_id)                 # fwd_from header
    fakegram.age_message(bot, alice, msg_id, 172_800)           # past the edit window
    fakegram.expire_file_references()                           # FILE_REFERENCE_EXPIRED
    fakegram.inject_error("SendMessageRequest", "SLOWMODE_WAIT_5", peer=group, nth=2)

Logging in (a client of a fresh install: ``fakegram.fresh_client()``, or ``fresh_session()`` for
a session file of another process)::

    fakegram.register_app(12345, api_hash)            # else API_ID_INVALID
    fakegram.set_password(alice, "pw", hint="usual")  # SESSION_PASSWORD_NEEDED, then SRP
    fakegram.login_code("+44 7700 900123")            # what the phone received
    fakegram.expire_login_codes(); fakegram.expire_login_tokens(); fakegram.set_login_token_lifetime(3)
    fakegram.terminate_sessions(alice)                # AUTH_KEY_UNREGISTERED from now on
"""

from .harness import Fakegram
from .records import ChannelRecord, ChatRecord, FileRecord, RpcFail, UserRecord
from .server import FakeTelegramServer
from .standalone import ServerThread

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
