"""The Telegram adapter: the only module that imports Telethon.

It turns Telethon messages into :class:`~voicebot.media.IncomingMessage` and implements the
core's :class:`~voicebot.chat.Chat` with a :class:`TelegramClient`. Every RPC error leaves
here as a :class:`~voicebot.errors.TelegramError` named as Telegram names it, so what it
means is decided in the core (:func:`voicebot.errors.classify`), offline and tested.

It also carries the login steps (:class:`TelethonLogin`, for :mod:`voicebot.login`) and reads
the owner's reactions (:func:`read_reaction`, for :mod:`voicebot.reactions`).

Example::

    client = make_client(settings)
    handlers = attach(client, intake.message, intake.reaction)   # before connecting: nothing slips past
    me = await connect(client)                   # NotLoggedIn: `python -m voicebot login` first
    chat = TelethonChat(client, me.id)
    await client.run_until_disconnected()
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from loguru import logger
from telethon import TelegramClient, errors, events, functions, utils
from telethon.errors.rpcerrorlist import rpc_errors_dict, rpc_errors_re
from telethon.tl import types
from telethon.tl.custom import Message

from . import __version__
from .chat import Dialog, Sent
from .config import Settings
from .errors import LOGIN_HINT, DownloadError, NotLoggedIn, RateLimited, TelegramError, Unreachable
from .login import CodeSent, QrCode, Terminal, interactive_login
from .media import ChatKind, IncomingMessage, Media, MediaKind
from .reactions import Reaction

T = TypeVar("T")
MAX_FLOOD_WAIT = 300  # seconds slept through in place; longer waits go back to the journal
# Telethon raises one class per Telegram error; the core wants Telegram's own names.
_NAMES = {cls: name for name, cls in rpc_errors_dict.items()}
_NAMES.update({cls: pattern.replace(r"(\d+)", "X") for pattern, cls in rpc_errors_re})


def make_client(settings: Settings, session: object | None = None) -> TelegramClient:
    """A client on the session file in the data dir (or on ``session``, e.g. a StringSession)."""
    return TelegramClient(
        session if session is not None else str(settings.session_path),
        settings.api_id,
        settings.api_hash,
        device_model="voicebot",
        app_version=__version__,
        # Every flood wait comes to TelethonChat._call, which counts, logs and bounds it.
        flood_sleep_threshold=0,
        # After its retries Telethon raises the last RPC error (RANDOM_ID_DUPLICATE, say), not a
        # bare ValueError that names nothing (client/users.py, _call).
        raise_last_call_error=True,
        # updates.getDifference from the state the session saved: what arrived while we
        # were down comes in as ordinary updates (client/updates.py, catch_up).
        catch_up=True,
    )


async def connect(client: TelegramClient) -> types.User:
    """Connect and return the account's user.

    Raises :class:`NotLoggedIn` (one line: how to log in) when the session has no logged-in
    account: never logged in, logged out, or terminated from another device (401
    AUTH_KEY_UNREGISTERED, SESSION_REVOKED…, core.telegram.org/api/errors#401-unauthorized).
    A bot never asks for a phone number: ``login`` does that, at a terminal.
    """
    await client.connect()
    me = await client.get_me()  # None on any 401 (client/users.py)
    if me is None:
        try:
            await client(functions.updates.GetStateRequest())  # to name Telegram's reason
            reason = ""
        except errors.RPCError as exc:
            reason = f" ({_error(exc).name})"
        await client.disconnect()
        raise NotLoggedIn(f"not logged in{reason}: {LOGIN_HINT}")
    return me


def describe(message: Message) -> IncomingMessage:
    """Telethon message → the core's plain description of it.

    Example::

        describe(event.message).media.kind   # MediaKind.VOICE
    """
    peer = message.peer_id
    if isinstance(peer, types.PeerUser):
        chat_kind = ChatKind.PRIVATE
    elif isinstance(peer, types.PeerChannel) and message.post:
        chat_kind = ChatKind.CHANNEL  # a broadcast channel post (messages there have post=True)
    else:
        chat_kind = ChatKind.GROUP
    chat = message.chat  # cached entity, if the update carried it; never a network call here
    reply = message.reply_to if isinstance(message.reply_to, types.MessageReplyHeader) else None
    topic_id = None
    if reply is not None and reply.forum_topic:
        # core.telegram.org/api/forum: in a topic, reply_to_top_id is the topic when the message
        # replies to another one, else reply_to_msg_id is the topic itself.
        topic_id = reply.reply_to_top_id or reply.reply_to_msg_id
    return IncomingMessage(
        chat_id=message.chat_id,
        message_id=message.id,
        chat_kind=chat_kind,
        sender_id=message.sender_id,
        outgoing=bool(message.out),
        media=_media(message),
        text=message.message or "",
        chat_username=getattr(chat, "username", None),
        sender_name=_name(message.sender),
        date=message.date.timestamp() if message.date else 0.0,
        reply_to=reply.reply_to_msg_id if reply is not None and reply.reply_to_msg_id != topic_id else None,
        topic_id=topic_id,
        forwarded=message.fwd_from is not None,
        auto_forward=_auto_forward(message),
        peer=_peer_token(message.input_chat),
        ref=message,
    )


def _auto_forward(message: Message) -> bool:
    """A channel post Telegram copied into the channel's discussion group: sent by the
    channel itself, with saved_from_peer pointing back at the post (core.telegram.org/api/discussion)."""
    fwd = message.fwd_from
    return (fwd is not None and isinstance(message.peer_id, types.PeerChannel)
            and isinstance(fwd.saved_from_peer, types.PeerChannel)
            and isinstance(message.from_id, types.PeerChannel)
            and message.from_id.channel_id == fwd.saved_from_peer.channel_id)


def _name(sender) -> str:
    if sender is None:
        return ""
    full = " ".join(filter(None, (getattr(sender, "first_name", None), getattr(sender, "last_name", None))))
    return full or getattr(sender, "title", None) or getattr(sender, "username", None) or ""


def _media(message: Message) -> Media | None:
    # Only a document sent as such: Telethon's message.document also returns a link
    # preview's document (tl/custom/message.py), and a link to a video is not a voice.
    media = message.media
    if not isinstance(media, types.MessageMediaDocument) or not isinstance(media.document, types.Document):
        return None
    document = media.document
    mime = document.mime_type or ""
    audio = next((a for a in document.attributes if isinstance(a, types.DocumentAttributeAudio)), None)
    video = next((a for a in document.attributes if isinstance(a, types.DocumentAttributeVideo)), None)
    if audio is not None and audio.voice:
        kind = MediaKind.VOICE
    elif video is not None and video.round_message:
        kind = MediaKind.VIDEO_NOTE
    elif audio is not None or mime.startswith("audio/"):
        kind = MediaKind.AUDIO
    elif video is not None or mime.startswith("video/"):
        kind = MediaKind.VIDEO
    else:
        return None
    duration = next((float(a.duration) for a in (audio, video) if a is not None), None)
    return Media(kind=kind, size=int(document.size or 0), duration=duration, document_id=document.id,
                 view_once=media.ttl_seconds is not None)


def _peer_token(peer) -> str:
    """An input peer as text for the journal: ``user:ID:HASH``, ``chat:ID``, ``channel:ID:HASH``."""
    if isinstance(peer, types.InputPeerUser):
        return f"user:{peer.user_id}:{peer.access_hash}"
    if isinstance(peer, types.InputPeerChannel):
        return f"channel:{peer.channel_id}:{peer.access_hash}"
    if isinstance(peer, types.InputPeerChat):
        return f"chat:{peer.chat_id}"
    return ""


def _from_token(token: str):
    kind, _, rest = token.partition(":")
    try:
        if kind == "user":
            user_id, access_hash = rest.split(":")
            return types.InputPeerUser(int(user_id), int(access_hash))
        if kind == "channel":
            channel_id, access_hash = rest.split(":")
            return types.InputPeerChannel(int(channel_id), int(access_hash))
        if kind == "chat":
            return types.InputPeerChat(int(rest))
    except ValueError:
        pass
    return None


def _error(exc: errors.RPCError) -> TelegramError:
    name = _NAMES.get(type(exc)) or exc.message or type(exc).__name__
    return TelegramError(name, abs(exc.code or 400))


class TelethonChat:
    """The core's :class:`~voicebot.chat.Chat` on a live :class:`TelegramClient`.

    Flood limits (Telethon's whole ``FloodError`` family: FLOOD_WAIT, FLOOD_PREMIUM_WAIT,
    SLOWMODE_WAIT) are waited out here, each one counted and logged; a wait longer than
    :data:`MAX_FLOOD_WAIT` is raised as :class:`RateLimited`, so the job waits in the journal.
    """

    def __init__(self, client: TelegramClient, me_id: int | None = None):
        self.client = client
        client.flood_sleep_threshold = 0  # every flood wait comes to _call
        self.me_id = me_id
        self.flood_waits = 0
        self._peers: dict[int, object] = {}  # chat id → input peer, from messages we were handed

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, cap: float | None = MAX_FLOOD_WAIT) -> T:
        while True:
            try:
                return await call()
            except errors.FloodError as exc:
                seconds = float(getattr(exc, "seconds", 0) or 0)
                if cap is not None and seconds > cap:
                    raise RateLimited(seconds, _error(exc).name) from exc
                self.flood_waits += 1
                logger.warning("flood wait of {:.0f}s on {}; waiting ({} since start)", seconds, what,
                               self.flood_waits)
                await asyncio.sleep(seconds + 0.5)
            except errors.RPCError as exc:
                raise _error(exc) from exc
            except (ConnectionError, TimeoutError) as exc:
                raise Unreachable(f"{what}: {type(exc).__name__}") from exc

    # -- addressing ---------------------------------------------------------------------

    async def _input(self, chat_id: int, ref: Message | None = None, token: str = ""):
        if self.me_id is not None and chat_id == self.me_id:
            return types.InputPeerSelf()
        if ref is not None and ref.input_chat is not None:
            return ref.input_chat
        if chat_id in self._peers:
            return self._peers[chat_id]
        peer = _from_token(token) if token else None
        if peer is not None:
            self._peers[chat_id] = peer
            return peer
        try:
            return await self.client.get_input_entity(chat_id)
        except ValueError:
            if ref is not None:
                return await self._call("chat", ref.get_input_chat)  # refetches it (getDifference/dialogs)
            # A new session file knows no access hashes: the dialog list carries them.
            await self._call("dialogs", lambda: self.client.get_dialogs(limit=200))
            try:
                return await self.client.get_input_entity(chat_id)
            except ValueError:
                raise TelegramError("PEER_ID_INVALID") from None

    async def _where(self, where: str | None, msg: IncomingMessage | None):
        if where is None:
            assert msg is not None, "a reply needs the message it answers"
            return await self._input(msg.chat_id, msg.ref, msg.peer)
        if where == "saved":
            return types.InputPeerSelf()
        target = int(where) if where.lstrip("-").isdigit() else where
        if isinstance(target, int):
            return await self._input(target)
        return await self._call("resolve", lambda: self.client.get_input_entity(target))

    async def _reply_to(self, where: str | None, msg: IncomingMessage | None, peer):
        if msg is None:
            return None
        if where is None:
            # Replies in a forum topic name it, or they land in General (core.telegram.org/api/forum).
            return types.InputReplyToMessage(reply_to_msg_id=msg.message_id, top_msg_id=msg.topic_id)
        voice_peer = await self._input(msg.chat_id, msg.ref, msg.peer)
        if self._id(voice_peer) == self._id(peer):
            return types.InputReplyToMessage(reply_to_msg_id=msg.message_id)
        # A reply to a message in another chat (core.telegram.org/api/reply): on every client
        # the quote opens the voice, where a message link would not (private chats have none).
        return types.InputReplyToMessage(reply_to_msg_id=msg.message_id, reply_to_peer_id=voice_peer)

    def _id(self, peer) -> int:
        """The marked chat id of an input peer (``InputPeerSelf`` is our own id)."""
        return self.me_id if isinstance(peer, types.InputPeerSelf) else utils.get_peer_id(peer)

    def _sent(self, request, result, peer) -> Sent:
        if isinstance(result, types.UpdateShortSentMessage):  # sendMessage in a private chat
            return Sent(self._id(peer), result.id)
        message = self.client._get_response_message(request, result, peer)
        if message is None:
            raise TelegramError("NO_MESSAGE_IN_RESULT", 500)
        return Sent(self._id(peer), message.id, message, document=message.document is not None)

    # -- the Chat protocol --------------------------------------------------------------

    async def send(self, where: str | None, html: str, *, reply_to: IncomingMessage | None = None) -> Sent:
        peer = await self._where(where, reply_to)
        text, entities = await self.client._parse_message_text(html, "html")
        request = functions.messages.SendMessageRequest(
            peer=peer, message=text, entities=entities or None, no_webpage=True,
            reply_to=await self._reply_to(where, reply_to, peer))
        return self._sent(request, await self._call("send", lambda: self.client(request)), peer)

    async def send_file(self, where: str | None, name: str, data: bytes, *,
                        reply_to: IncomingMessage | None = None) -> Sent:
        peer = await self._where(where, reply_to)
        upload = await self._call("upload", lambda: self.client.upload_file(data, file_name=name))
        request = functions.messages.SendMediaRequest(
            peer=peer, message="", reply_to=await self._reply_to(where, reply_to, peer),
            media=types.InputMediaUploadedDocument(
                file=upload, mime_type="text/plain" if name.endswith(".txt") else "application/x-subrip",
                attributes=[types.DocumentAttributeFilename(name)], force_file=True))
        return self._sent(request, await self._call("send file", lambda: self.client(request)), peer)

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        peer = await self._input(sent.chat_id, sent.ref)
        text, entities = await self.client._parse_message_text(html, "html")
        request = functions.messages.EditMessageRequest(peer=peer, id=sent.message_id, message=text,
                                                        entities=entities or None, no_webpage=True)
        # Progress edits are cosmetic: never sleep through a flood wait for one.
        await self._call("edit", lambda: self.client(request), cap=0 if progress else MAX_FLOOD_WAIT)

    async def delete(self, sent: Sent) -> None:
        peer = await self._input(sent.chat_id, sent.ref)
        await self._call("delete", lambda: self.client.delete_messages(peer, [sent.message_id]))

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        try:
            # A stale file reference is refreshed by Telethon itself (client/downloads.py).
            result = await self._call("download", lambda: self.client.download_media(msg.ref, file=str(dest)))
        except OSError:
            raise  # our disk, not Telegram: the pipeline reports it as such
        except ValueError as exc:
            raise DownloadError(f"ValueError: {exc}") from exc
        if result is None or not dest.exists():
            raise DownloadError("Telegram returned no file")

    async def fetch(self, chat_id: int, message_id: int, peer: str = "") -> IncomingMessage | None:
        try:
            where = await self._input(chat_id, token=peer)
        except TelegramError as exc:
            logger.warning("cannot reach chat {}: {}", chat_id, exc)
            return None
        message = await self._call("fetch", lambda: self.client.get_messages(where, ids=message_id))
        return describe(message) if isinstance(message, Message) else None

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        if msg.ref is None:
            return None
        message = await self._call("fetch reply", msg.ref.get_reply_message)
        return describe(message) if message else None

    async def answers(self, where: str | None, msg: IncomingMessage, since: float) -> list[Sent]:
        peer = await self._where(where, msg)
        voice_chat = msg.chat_id

        async def collect() -> list[Sent]:
            found = []
            async for m in self.client.iter_messages(peer, limit=300):
                if m.date and m.date.timestamp() < since:
                    break
                reply = m.reply_to if isinstance(m.reply_to, types.MessageReplyHeader) else None
                if not m.out or reply is None or reply.reply_to_msg_id != msg.message_id:
                    continue
                other = reply.reply_to_peer_id
                if (utils.get_peer_id(other) if other is not None else m.chat_id) != voice_chat:
                    continue
                found.append(Sent(self._id(peer), m.id, m, document=m.document is not None))
            return found[::-1]

        return await self._call("look for answers", collect)

    async def dialogs(self) -> AsyncIterator[Dialog]:
        # Paged by hand, as client/dialogs.py does, so a flood wait pauses one page instead of
        # ending the iteration; backfill runs in the background and may wait as long as asked.
        offset = {"offset_date": None, "offset_id": 0, "offset_peer": types.InputPeerEmpty()}
        seen: set[int] = set()
        while True:
            page = await self._call("dialogs", lambda: self.client.get_dialogs(limit=100, **offset), cap=None)
            fresh = [d for d in page if d.id not in seen]
            for d in fresh:
                seen.add(d.id)
                kind = (ChatKind.PRIVATE if d.is_user else ChatKind.CHANNEL if d.is_channel and not d.is_group
                        else ChatKind.GROUP)
                yield Dialog(chat_id=d.id, kind=kind, username=getattr(d.entity, "username", None),
                             pinned=bool(d.pinned), last_date=d.date.timestamp() if d.date else 0.0)
            last = page[-1] if page else None
            if not fresh or last is None or last.message is None:
                return
            offset = {"offset_date": last.date, "offset_id": last.message.id, "offset_peer": last.input_entity}

    async def history(self, chat_id: int, since: float, limit: int) -> list[IncomingMessage]:
        peer = await self._input(chat_id)
        messages = await self._call("history", lambda: self.client.get_messages(peer, limit=limit))
        return [describe(m) for m in messages
                if isinstance(m, Message) and m.date and m.date.timestamp() >= since]

    def link(self, chat_id: int, message_id: int, *, username: str | None = None,
             topic_id: int | None = None) -> str | None:
        real_id, peer_type = utils.resolve_id(chat_id)
        if peer_type is types.PeerUser:
            return f"tg://user?id={real_id}"  # a mention: opens the chat on every client
        if peer_type is types.PeerChat:
            return None  # basic groups have no message links
        base = f"https://t.me/{username}" if username else f"https://t.me/c/{real_id}"
        return f"{base}/{topic_id}/{message_id}" if topic_id else f"{base}/{message_id}"


def attach(client: TelegramClient, on_message: Callable[[IncomingMessage], Awaitable[None]],
           on_reaction: Callable[[Reaction], Awaitable[None]] | None = None, *,
           reaction: str = "") -> list[Callable]:
    """Call ``on_message`` for every new message, and ``on_reaction`` when the reactions on a
    message change (only the owner's ``reaction`` is fetched when Telegram leaves it out);
    returns the handlers (for :func:`detach`).

    Attach before :func:`connect`: updates are dispatched only to handlers present when
    they arrive, and catch-up starts as soon as the client connects (client/updates.py).
    """

    async def on_new(event: events.NewMessage.Event) -> None:
        await on_message(describe(event.message))

    client.add_event_handler(on_new, events.NewMessage())
    handlers: list[Callable] = [on_new]
    if on_reaction is not None:
        # Telethon 1.45 has no event for reactions: the raw update (core.telegram.org/constructor/
        # updateMessageReactions) is all there is.
        async def on_update(update: types.UpdateMessageReactions) -> None:
            read = await read_reaction(client, update, reaction)
            if read is not None:
                await on_reaction(read)

        client.add_event_handler(on_update, events.Raw(types.UpdateMessageReactions))
        handlers.append(on_update)
    return handlers


def detach(client: TelegramClient, handlers: list[Callable]) -> None:
    """Stop receiving messages and reactions (used on shutdown, before the last job finishes)."""
    for handler in handlers:
        client.remove_event_handler(handler)


def _chosen(reactions: types.MessageReactions) -> frozenset[str]:
    # chosen_order is set on the viewer's own reactions only (core.telegram.org/api/reactions).
    return frozenset(r.reaction.emoticon for r in reactions.results
                     if r.chosen_order is not None and isinstance(r.reaction, types.ReactionEmoji))


async def read_reaction(client: TelegramClient, update: types.UpdateMessageReactions,
                        wanted: str = "") -> Reaction | None:
    """The account's own reactions on the message of ``update``.

    A ``min`` update leaves out which reactions are the viewer's ("you can use
    messages.getMessagesReactions to get the full reaction info", constructor/messageReactions;
    TDLib keeps its old chosen reactions on such an update, MessageReactions::update_from).
    When ``wanted`` is among its reactions, the full ones are fetched; otherwise it is dropped.

    Example::

        reaction = await read_reaction(client, update, "✍")   # Reaction(..., mine={'✍'})
    """
    chat_id = utils.get_peer_id(update.peer)
    entity = (getattr(update, "_entities", None) or {}).get(chat_id)
    token = _peer_token(utils.get_input_peer(entity)) if entity is not None else ""
    reactions = update.reactions
    if reactions.min:
        emoji = {r.reaction.emoticon for r in reactions.results if isinstance(r.reaction, types.ReactionEmoji)}
        if wanted not in emoji:
            return None
        try:
            peer = await client.get_input_entity(update.peer)
            full = await client(functions.messages.GetMessagesReactionsRequest(peer=peer, id=[update.msg_id]))
        except (errors.RPCError, ValueError, ConnectionError) as exc:
            logger.warning("cannot read the reactions on message {} in chat {}: {}", update.msg_id, chat_id, exc)
            return None
        reactions = next((u.reactions for u in getattr(full, "updates", [])
                          if isinstance(u, types.UpdateMessageReactions) and u.msg_id == update.msg_id), None)
        if reactions is None:
            return None
    return Reaction(chat_id=chat_id, message_id=update.msg_id, mine=_chosen(reactions), peer=token)


# -- logging in --------------------------------------------------------------------------------

_CODE_VIA = {types.auth.SentCodeTypeApp: "app", types.auth.SentCodeTypeSms: "sms",
             types.auth.SentCodeTypeCall: "call", types.auth.SentCodeTypeEmailCode: "email"}


async def _rpc(call: Awaitable[T]) -> T:
    """Await one login step; every refusal leaves as Telegram names it (a flood as RateLimited)."""
    try:
        return await call
    except errors.FloodError as exc:
        raise RateLimited(float(getattr(exc, "seconds", 0) or 0), _error(exc).name) from exc
    except errors.RPCError as exc:
        raise _error(exc) from exc
    except (ConnectionError, TimeoutError) as exc:
        raise Unreachable(f"login: {type(exc).__name__}") from exc


def _who(user: types.User) -> str:
    name = _name(user) or str(user.id)
    return f"{name} (@{user.username})" if user.username else name


class TelethonLogin:
    """The login steps of :class:`voicebot.login.LoginPort` on a connected client
    (core.telegram.org/api/auth, /api/srp, /api/qr-login).

    Example::

        port = TelethonLogin(client)
        sent = await port.send_code("+44 7700 900123")     # CodeSent(via='app', length=5)
        who = await port.sign_in("+44 7700 900123", "12345")
    """

    def __init__(self, client: TelegramClient):
        self.client = client
        self._hashes: dict[str, str] = {}  # phone -> phone_code_hash of the last code sent
        self._scanned = asyncio.Event()
        client.add_event_handler(self._on_scan, events.Raw(types.UpdateLoginToken))

    async def _on_scan(self, update: types.UpdateLoginToken) -> None:
        self._scanned.set()

    async def me(self) -> str | None:
        me = await self.client.get_me()
        return _who(me) if me is not None else None

    async def send_code(self, phone: str) -> CodeSent:
        phone = utils.parse_phone(phone) or phone
        sent = await _rpc(self.client(functions.auth.SendCodeRequest(
            phone, self.client.api_id, self.client.api_hash, types.CodeSettings())))
        if not isinstance(sent, types.auth.SentCode):  # auth.sentCodeSuccess: needs a future_auth_token we never keep
            raise TelegramError("SENT_CODE_SUCCESS")
        self._hashes[phone] = sent.phone_code_hash
        return CodeSent(via=_CODE_VIA.get(type(sent.type), "other"), length=getattr(sent.type, "length", None))

    async def sign_in(self, phone: str, code: str) -> str:
        phone = utils.parse_phone(phone) or phone
        user = await _rpc(self.client.sign_in(phone, code, phone_code_hash=self._hashes.get(phone, "")))
        return _who(user)

    async def password_hint(self) -> str | None:
        password = await _rpc(self.client(functions.account.GetPasswordRequest()))
        return password.hint or None

    async def check_password(self, password: str) -> str:
        # Telethon computes the SRP proof (telethon/password.py) from a fresh account.getPassword.
        return _who(await _rpc(self.client.sign_in(password=password)))

    async def qr_code(self) -> QrCode | str:
        client = self.client
        answer = await _rpc(client(functions.auth.ExportLoginTokenRequest(client.api_id, client.api_hash, [])))
        if isinstance(answer, types.auth.LoginTokenMigrateTo):  # the account lives on another DC
            await client._switch_dc(answer.dc_id)
            answer = await _rpc(client(functions.auth.ImportLoginTokenRequest(answer.token)))
        if isinstance(answer, types.auth.LoginTokenSuccess):
            await client._on_login(answer.authorization.user)  # what QRLogin.wait does (custom/qrlogin.py)
            return _who(answer.authorization.user)
        self._scanned.clear()  # any scan so far is answered by this very export
        token = base64.urlsafe_b64encode(answer.token).decode().rstrip("=")
        return QrCode(url=f"tg://login?token={token}", expires=answer.expires.timestamp())

    async def wait_for_scan(self, until: float) -> None:
        try:
            await asyncio.wait_for(self._scanned.wait(), max(1.0, until - time.time()))
        except TimeoutError:
            pass


async def login(settings: Settings, terminal: Terminal, *, qr: bool = False) -> str:
    """Log in at ``terminal`` (phone and code, or ``qr``) and keep the session file; returns who.

    Example::

        who = await login(settings, Console(), qr=True)
    """
    client = make_client(settings)
    try:
        await client.connect()
        who = await interactive_login(TelethonLogin(client), terminal, qr=qr)
    finally:
        await client.disconnect()
    logger.info("logged in as {}", who)
    return who
