"""The Telegram adapter: the only module that imports Telethon.

It turns Telethon messages into :class:`~voicebot.media.IncomingMessage` and implements
the core's :class:`~voicebot.pipeline.Chat` with a :class:`TelegramClient`.

Example::

    client = make_client(settings)
    await connect(client, interactive=sys.stdin.isatty())
    attach(client, pipeline.on_message, owner_id=(await client.get_me()).id)
    await client.run_until_disconnected()
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar
from pathlib import Path

from loguru import logger
from telethon import TelegramClient, errors, events, functions, utils
from telethon.tl import types
from telethon.tl.custom import Message

from . import __version__
from .config import Settings
from .errors import DownloadError, NotLoggedIn, RateLimited
from .media import ChatKind, IncomingMessage, Media, MediaKind
from .pipeline import Sent


def make_client(settings: Settings, session: object | None = None) -> TelegramClient:
    """A client on the session file in the data dir (or on ``session``, e.g. a StringSession)."""
    return TelegramClient(
        session if session is not None else str(settings.session_path),
        settings.api_id,
        settings.api_hash,
        device_model="voicebot",
        app_version=__version__,
        # Waits up to a minute are slept through silently; longer ones surface as errors.
        flood_sleep_threshold=60,
    )


async def connect(client: TelegramClient, *, interactive: bool) -> types.User:
    """Connect; log in on a terminal when needed. Returns the account's user.

    Raises :class:`NotLoggedIn` when the session is not authorised and ``interactive`` is
    false: a bot under Docker must never hang waiting for a phone number.
    """
    await client.connect()
    if not await client.is_user_authorized():
        if not interactive:
            await client.disconnect()
            raise NotLoggedIn("not logged in: run `python -m voicebot login` "
                              "(Docker: `docker compose run --rm voicebot login`) first")
        await client.start(phone=lambda: input("Phone number (international format, e.g. +44…): "),
                           password=lambda: getpass.getpass("Two-step verification password: "))
    return await client.get_me()


def describe(message: Message) -> IncomingMessage:
    """Telethon message → the core's plain description of it.

    Example::

        describe(event.message).media.kind   # MediaKind.VOICE
    """
    peer = message.peer_id
    if isinstance(peer, types.PeerUser):
        chat_kind = ChatKind.PRIVATE
    elif isinstance(peer, types.PeerChannel) and message.post:
        chat_kind = ChatKind.CHANNEL
    else:
        chat_kind = ChatKind.GROUP
    chat = message.chat  # cached entity, if the update carried it; never a network call here
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
        reply_to=message.reply_to_msg_id,
        ref=message,
    )


def _name(sender) -> str:
    if sender is None:
        return ""
    full = " ".join(filter(None, (getattr(sender, "first_name", None), getattr(sender, "last_name", None))))
    return full or getattr(sender, "title", None) or getattr(sender, "username", None) or ""


def _media(message: Message) -> Media | None:
    document = message.document
    if document is None:
        return None
    if message.voice:
        kind = MediaKind.VOICE
    elif message.video_note:
        kind = MediaKind.VIDEO_NOTE
    elif message.audio or (document.mime_type or "").startswith("audio/"):
        kind = MediaKind.AUDIO
    elif message.video or (document.mime_type or "").startswith("video/"):
        kind = MediaKind.VIDEO
    else:
        return None
    duration = None
    for attribute in document.attributes:
        if isinstance(attribute, (types.DocumentAttributeAudio, types.DocumentAttributeVideo)):
            duration = float(attribute.duration)
    return Media(kind=kind, size=int(document.size or 0), duration=duration, document_id=document.id)


T = TypeVar("T")
MAX_FLOOD_WAIT = 300  # seconds; longer waits fail the operation (the journal retries it later)


class TelethonChat:
    """The core's :class:`~voicebot.pipeline.Chat` on a live :class:`TelegramClient`.

    Flood limits are waited out here rather than inside Telethon, so each one is counted
    and logged, and a wait longer than :data:`MAX_FLOOD_WAIT` fails instead of stalling.
    """

    def __init__(self, client: TelegramClient):
        self.client = client
        client.flood_sleep_threshold = 0  # every FloodWaitError comes to _patient
        self.flood_waits = 0

    async def _patient(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await call()
            except errors.FloodWaitError as exc:
                if exc.seconds > MAX_FLOOD_WAIT:
                    raise RateLimited(exc.seconds) from exc
                self.flood_waits += 1
                logger.warning("flood wait of {}s on {}; waiting ({} since start)", exc.seconds, what,
                               self.flood_waits)
                await asyncio.sleep(exc.seconds + 0.5)

    async def reply(self, msg: IncomingMessage, html: str) -> Sent:
        sent = await self._patient("reply", lambda: self.client.send_message(
            _peer(msg.ref, msg.chat_id), html, reply_to=msg.message_id, parse_mode="html", link_preview=False))
        return Sent(sent.chat_id, sent.id, sent)

    async def send(self, target: str, html: str) -> Sent:
        sent = await self._patient("send", lambda: self.client.send_message(
            _entity(target), html, parse_mode="html", link_preview=False))
        return Sent(sent.chat_id, sent.id, sent)

    async def send_file(self, msg: IncomingMessage, target: str | None, name: str, data: bytes) -> Sent:
        upload = await self._patient("upload", lambda: self.client.upload_file(data, file_name=name))
        to = _peer(msg.ref, msg.chat_id) if target is None else _entity(target)
        reply_to = msg.message_id if target is None else None
        sent = await self._patient("send file", lambda: self.client.send_file(
            to, upload, reply_to=reply_to, force_document=True))
        return Sent(sent.chat_id, sent.id, sent)

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        peer = _peer(sent.ref, sent.chat_id)
        try:
            if not progress:
                await self._patient("edit", lambda: self.client.edit_message(
                    peer, sent.message_id, html, parse_mode="html", link_preview=False))
                return
            # Progress edits are cosmetic: never sleep through a flood wait for one.
            text, entities = await self.client._parse_message_text(html, "html")
            request = functions.messages.EditMessageRequest(
                peer=await self.client.get_input_entity(peer), id=sent.message_id, message=text,
                entities=entities, no_webpage=True)
            await self.client(request)
        except errors.MessageNotModifiedError:
            pass  # same text as before: nothing to do
        except errors.FloodWaitError as exc:
            raise RateLimited(exc.seconds) from exc

    async def delete(self, sent: Sent) -> None:
        await self._patient("delete", lambda: self.client.delete_messages(
            _peer(sent.ref, sent.chat_id), [sent.message_id]))

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        try:
            result = await self._patient("download", lambda: self.client.download_media(msg.ref, file=str(dest)))
        except OSError:
            raise  # our disk, not Telegram: the pipeline reports it as such
        except (TimeoutError, errors.RPCError, ConnectionError, ValueError, RateLimited) as exc:
            raise DownloadError(f"{type(exc).__name__}: {exc}") from exc
        if result is None or not dest.exists():
            raise DownloadError("Telegram returned no file")

    async def fetch(self, chat_id: int, message_id: int) -> IncomingMessage | None:
        try:
            try:
                message = await self._patient("fetch", lambda: self.client.get_messages(chat_id, ids=message_id))
            except ValueError:
                # The chat's access hash is not in the session's cache (a new session file):
                # the dialog list carries it.
                await self._patient("dialogs", lambda: self.client.get_dialogs(limit=200))
                message = await self._patient("fetch", lambda: self.client.get_messages(chat_id, ids=message_id))
        except (errors.RPCError, ValueError) as exc:
            logger.warning("cannot fetch message {} in chat {}: {}", message_id, chat_id, exc)
            return None
        return describe(message) if message else None

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        if msg.ref is None:
            return None
        message = await self._patient("fetch reply", msg.ref.get_reply_message)
        return describe(message) if message else None

    async def recent(self, since: float, per_chat: int) -> list[IncomingMessage]:
        found: list[IncomingMessage] = []
        async for dialog in self.client.iter_dialogs(limit=200):
            if dialog.date is None or dialog.date.timestamp() < since:
                break  # dialogs come newest first
            async for message in self.client.iter_messages(dialog.entity, limit=per_chat * 5):
                if message.date.timestamp() < since:
                    break
                incoming = describe(message)
                if incoming.media is not None:
                    found.append(incoming)
                    if sum(m.chat_id == incoming.chat_id for m in found) >= per_chat:
                        break
        return sorted(found, key=lambda m: m.date)

    def link(self, chat_id: int, message_id: int) -> str:
        real_id, peer_type = utils.resolve_id(chat_id)
        if peer_type is types.PeerUser:
            return f"tg://openmessage?user_id={real_id}&message_id={message_id}"
        return f"https://t.me/c/{real_id}/{message_id}"


def _peer(ref: Message | None, chat_id: int):
    """The message's input peer when we have it (no lookup), else the id (session cache)."""
    return ref.input_chat if ref is not None and ref.input_chat is not None else chat_id


def _entity(target: str):
    if target == "saved":
        return "me"
    return int(target) if target.lstrip("-").isdigit() else target


def attach(client: TelegramClient, on_message: Callable[[IncomingMessage], Awaitable[None]]) -> Callable:
    """Call ``on_message`` for every new message; returns the handler (for :func:`detach`)."""

    async def handler(event: events.NewMessage.Event) -> None:
        await on_message(describe(event.message))

    client.add_event_handler(handler, events.NewMessage())
    return handler


def detach(client: TelegramClient, handler: Callable) -> None:
    """Stop receiving messages (used on shutdown, before the last job finishes)."""
    client.remove_event_handler(handler)


async def login(settings: Settings) -> str:
    """Interactive login that writes the session file; returns who logged in."""
    client = make_client(settings)
    try:
        me = await connect(client, interactive=True)
    finally:
        await client.disconnect()
    logger.info("logged in as {} (id {})", me.first_name, me.id)
    return f"{me.first_name or ''} (@{me.username})" if me.username else (me.first_name or str(me.id))
