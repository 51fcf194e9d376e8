"""The core's :class:`~voicebot.core.ports.Chat` port on a live Telethon client.

Example::

    chat = TelethonChat(client, me.id)
    sent = await chat.send(None, "🎙 transcribing…", reply_to=msg)
    await chat.edit(sent, "Hello, world.")
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from loguru import logger
from telethon import TelegramClient, errors, functions, utils
from telethon.tl import types
from telethon.tl.custom import Message

from voicebot import metrics
from voicebot.errors import DownloadError, RateLimited, TelegramError
from voicebot.messages import ChatKind, Dialog, IncomingMessage, MediaKind, Sent

from .convert import describe, display_name, from_token
from .errors import flood_seconds, rpc_error, translate
from .updates import own_reactions

T = TypeVar("T")
MAX_FLOOD_WAIT = 300  # seconds slept through in place; longer waits go back to the journal
NAMES_TTL = 3600.0  # seconds a group's member names and the contacts' names are kept
SEARCH_PAGE = 100  # messages.search answers at most this many a call (api/offsets)
# The media filters that find each kind (constructor/inputMessagesFilterRoundVoice: "round videos
# and voice notes"; Music: audio files; Video: videos).
SEARCH_FILTERS = {
    MediaKind.VOICE: types.InputMessagesFilterRoundVoice,
    MediaKind.VIDEO_NOTE: types.InputMessagesFilterRoundVoice,
    MediaKind.AUDIO: types.InputMessagesFilterMusic,
    MediaKind.VIDEO: types.InputMessagesFilterVideo,
}
DOWNLOAD_PART = 128 * 1024  # what download_media asks per chunk below 100 MB (utils.get_appropriated_part_size)


class TelethonChat:
    """The core's :class:`~voicebot.core.ports.Chat` on a live :class:`TelegramClient`.

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
        self._names: dict[object, tuple[float, list[str]]] = {}  # chat id or "contacts" → (when, names)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, cap: float | None = MAX_FLOOD_WAIT) -> T:
        while True:
            try:
                return await call()
            except errors.FloodError as exc:
                seconds = flood_seconds(exc)
                if cap is not None and seconds > cap:
                    metrics.flood_wait(seconds, waited=False)
                    raise RateLimited(seconds, rpc_error(exc).name) from exc
                self.flood_waits += 1
                metrics.flood_wait(seconds, waited=True)
                logger.warning("flood wait of {:.0f}s on {}; waiting ({} since start)", seconds, what, self.flood_waits)
                await asyncio.sleep(seconds + 0.5)
            except (errors.RPCError, ConnectionError, TimeoutError) as exc:
                raise translate(exc, what) from exc

    # -- addressing ---------------------------------------------------------------------

    async def _input(self, chat_id: int, ref: Message | None = None, token: str = ""):
        if self.me_id is not None and chat_id == self.me_id:
            return types.InputPeerSelf()
        if ref is not None and ref.input_chat is not None:
            return ref.input_chat
        if chat_id in self._peers:
            return self._peers[chat_id]
        peer = from_token(token) if token else None
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
            peer=peer,
            message=text,
            entities=entities or None,
            no_webpage=True,
            reply_to=await self._reply_to(where, reply_to, peer),
        )
        return self._sent(request, await self._call("send", lambda: self.client(request)), peer)

    async def send_file(
        self, where: str | None, name: str, data: bytes, *, reply_to: IncomingMessage | None = None
    ) -> Sent:
        peer = await self._where(where, reply_to)
        upload = await self._call("upload", lambda: self.client.upload_file(data, file_name=name))
        request = functions.messages.SendMediaRequest(
            peer=peer,
            message="",
            reply_to=await self._reply_to(where, reply_to, peer),
            media=types.InputMediaUploadedDocument(
                file=upload,
                mime_type="text/plain" if name.endswith(".txt") else "application/x-subrip",
                attributes=[types.DocumentAttributeFilename(name)],
                force_file=True,
            ),
        )
        return self._sent(request, await self._call("send file", lambda: self.client(request)), peer)

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        peer = await self._input(sent.chat_id, sent.ref)
        text, entities = await self.client._parse_message_text(html, "html")
        request = functions.messages.EditMessageRequest(
            peer=peer, id=sent.message_id, message=text, entities=entities or None, no_webpage=True
        )
        # Progress edits are cosmetic: never sleep through a flood wait for one.
        await self._call("edit", lambda: self.client(request), cap=0 if progress else MAX_FLOOD_WAIT)

    async def delete(self, sent: Sent) -> None:
        peer = await self._input(sent.chat_id, sent.ref)
        await self._call("delete", lambda: self.client.delete_messages(peer, [sent.message_id]))

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        media = getattr(msg.ref, "media", None)
        try:
            if isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
                await self._download_document(msg.ref, media.document, dest)
            elif await self._call("download", lambda: self.client.download_media(msg.ref, file=str(dest))) is None:
                raise DownloadError("Telegram returned no file")
        except OSError:
            raise  # our disk, not Telegram: the pipeline reports it as such
        except ValueError as exc:
            raise DownloadError(f"ValueError: {exc}") from exc
        if not dest.exists():  # noqa: ASYNC240 (one stat of the file just written)
            raise DownloadError("Telegram returned no file")

    async def _download_document(self, message: Message, document: types.Document, dest: Path) -> None:
        """Chunk by chunk; after a flood wait it goes on from the byte it reached.

        Telethon's ``download_media`` would start again from byte 0: ``flood_sleep_threshold=0``
        reaches its per-chunk ``upload.getFile`` (client/downloads.py), and FLOOD_PREMIUM_WAIT_X
        means "the query must be automatically repeated by the client after X seconds"
        (core.telegram.org/api/files). A stale file reference is refreshed once per try, as
        download_media does (refetch the message; the same document id).
        """
        current = document
        with dest.open("wb") as out:  # chunk writes, as Telethon's download_media makes them

            async def go_on() -> None:
                nonlocal current
                refreshed = False
                while True:
                    try:
                        parts = self.client.iter_download(current, offset=out.tell(), request_size=DOWNLOAD_PART)
                        async for chunk in parts:
                            out.write(chunk)
                        return
                    except (errors.FileReferenceExpiredError, errors.FilerefUpgradeNeededError):
                        fresh = (
                            None if refreshed else await self.client.get_messages(message.input_chat, ids=message.id)
                        )
                        fresh_doc = getattr(getattr(fresh, "media", None), "document", None)
                        if not isinstance(fresh_doc, types.Document) or fresh_doc.id != current.id:
                            raise
                        current, refreshed = fresh_doc, True

            await self._call("download", go_on)
            if document.size and out.tell() < document.size:
                raise DownloadError(f"Telegram sent {out.tell()} of {document.size} bytes")

    async def fetch(self, chat_id: int, message_id: int, peer: str = "") -> IncomingMessage | None:
        try:
            where = await self._input(chat_id, token=peer)
        except TelegramError as exc:
            logger.warning("cannot reach chat {}: {}", chat_id, exc)
            return None
        message = await self._call("fetch", lambda: self.client.get_messages(where, ids=message_id))
        return describe(message) if isinstance(message, Message) else None

    async def reactions(self, chat_id: int, ids: list[int], peer: str = "") -> dict[int, frozenset[str]]:
        """``messages.getMessagesReactions``: the full reactions, as ``updateMessageReactions``
        (core.telegram.org/api/reactions); TDLib asks for at most 100 ids a call."""
        where = await self._input(chat_id, token=peer)
        request = functions.messages.GetMessagesReactionsRequest(peer=where, id=ids[:100])
        result = await self._call("reactions", lambda: self.client(request), cap=0)
        found = {}
        for update in getattr(result, "updates", []):
            if isinstance(update, types.UpdateMessageReactions) and own_reactions(update.reactions):
                found[update.msg_id] = own_reactions(update.reactions)
        return found

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
            page = await self._call(
                "dialogs", lambda offset=offset: self.client.get_dialogs(limit=100, **offset), cap=None
            )
            fresh = [d for d in page if d.id not in seen]
            for d in fresh:
                seen.add(d.id)
                kind = (
                    ChatKind.PRIVATE
                    if d.is_user
                    else ChatKind.CHANNEL
                    if d.is_channel and not d.is_group
                    else ChatKind.GROUP
                )
                yield Dialog(
                    chat_id=d.id,
                    kind=kind,
                    username=getattr(d.entity, "username", None),
                    pinned=bool(d.pinned),
                    last_date=d.date.timestamp() if d.date else 0.0,
                )
            last = page[-1] if page else None
            if not fresh or last is None or last.message is None:
                return
            offset = {"offset_date": last.date, "offset_id": last.message.id, "offset_peer": last.input_entity}

    async def recordings(
        self, chat_id: int, since: float, kinds: frozenset[MediaKind], limit: int
    ) -> list[IncomingMessage]:
        """``messages.search`` with a media filter and ``min_date`` (core.telegram.org/method/messages.search),
        paged with ``offset_id`` (api/offsets): only the recordings, however many texts came after."""
        peer = await self._input(chat_id)
        since_dt = datetime.datetime.fromtimestamp(since, tz=datetime.UTC)
        found: dict[int, IncomingMessage] = {}
        for search_filter in {SEARCH_FILTERS[k] for k in kinds}:
            offset_id = 0
            while True:
                request = functions.messages.SearchRequest(
                    peer=peer, q="", filter=search_filter(), min_date=since_dt, max_date=None,
                    offset_id=offset_id, add_offset=0, limit=min(limit, SEARCH_PAGE), max_id=0, min_id=0, hash=0,
                )  # fmt: skip
                result = await self._call("search", lambda request=request: self.client(request))
                page = [m for m in getattr(result, "messages", []) if isinstance(m, Message)]
                entities = {utils.get_peer_id(e): e for e in [*result.users, *result.chats]}
                for m in page:
                    m._finish_init(self.client, entities, None)  # as Telethon's own iterators do (client/messages.py)
                    msg = describe(m)
                    if msg.media is not None and msg.media.kind in kinds and msg.date >= since:
                        found[msg.message_id] = msg
                if len(page) < min(limit, SEARCH_PAGE) or len(found) >= limit:
                    break
                offset_id = page[-1].id
        return sorted(found.values(), key=lambda m: -m.message_id)[:limit]

    async def members(self, msg: IncomingMessage, limit: int) -> list[str]:
        """A basic group's members from ``messages.getFullChat`` (core.telegram.org/method/messages.getFullChat),
        a supergroup's from ``channels.getParticipants`` with ``channelParticipantsRecent``
        (core.telegram.org/method/channels.getParticipants; its ``count`` says whether the group
        is small). A refusal (hidden members, CHAT_ADMIN_REQUIRED…) or a flood wait is kept as
        "no names" for :data:`NAMES_TTL`: a voice never waits for this."""

        async def fetch() -> list[str]:
            peer = await self._input(msg.chat_id, msg.ref, msg.peer)
            if isinstance(peer, types.InputPeerChat):
                request = functions.messages.GetFullChatRequest(peer.chat_id)
                full = await self._call("members", lambda: self.client(request), cap=0)
                participants = getattr(full.full_chat.participants, "participants", None)  # Forbidden: none
                if participants is None or len(participants) > limit:
                    return []
                ids = {p.user_id for p in participants}
                return _names(u for u in full.users if u.id in ids)
            if isinstance(peer, types.InputPeerChannel):
                request = functions.channels.GetParticipantsRequest(
                    channel=types.InputChannel(peer.channel_id, peer.access_hash),
                    filter=types.ChannelParticipantsRecent(),
                    offset=0,
                    limit=limit + 1,
                    hash=0,
                )
                result = await self._call("members", lambda: self.client(request), cap=0)
                if not isinstance(result, types.channels.ChannelParticipants) or result.count > limit:
                    return []
                return _names(result.users)
            return []

        return await self._cached(msg.chat_id, fetch)

    async def contacts(self) -> list[str]:
        """``contacts.getContacts`` with hash 0, the full list (core.telegram.org/method/contacts.getContacts)."""

        async def fetch() -> list[str]:
            request = functions.contacts.GetContactsRequest(hash=0)
            result = await self._call("contacts", lambda: self.client(request), cap=0)
            return _names(getattr(result, "users", []))

        return await self._cached("contacts", fetch)

    async def _cached(self, key: object, fetch: Callable[[], Awaitable[list[str]]]) -> list[str]:
        now = time.monotonic()
        cached = self._names.get(key)
        if cached is not None and now - cached[0] < NAMES_TTL:
            return cached[1]
        try:
            names = await fetch()
        except TelegramError as exc:
            logger.debug("no names for {}: {}", key, exc)
            names = []
        self._names[key] = (now, names)
        return names

    def link(
        self, chat_id: int, message_id: int, *, username: str | None = None, topic_id: int | None = None
    ) -> str | None:
        real_id, peer_type = utils.resolve_id(chat_id)
        if peer_type is types.PeerUser:
            return f"tg://user?id={real_id}"  # a mention: opens the chat on every client
        if peer_type is types.PeerChat:
            return None  # basic groups have no message links
        base = f"https://t.me/{username}" if username else f"https://t.me/c/{real_id}"
        return f"{base}/{topic_id}/{message_id}" if topic_id else f"{base}/{message_id}"


def _names(users) -> list[str]:
    """Display names of real people: not ourselves, not deleted accounts, not bots."""
    return [
        name
        for u in users
        if isinstance(u, types.User) and not (u.is_self or u.deleted or u.bot)
        for name in [display_name(u)]
        if name
    ]
