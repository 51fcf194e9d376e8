"""Shared test helpers: fixture paths, word error rate, an in-memory chat, Telethon messages."""

from __future__ import annotations

import datetime
import itertools
import json
import re
import shutil
from pathlib import Path

from telethon.tl import types

from voicebot.errors import DownloadError, RateLimited
from voicebot.media import IncomingMessage
from voicebot.pipeline import Sent

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, str] = json.loads((FIXTURES / "expected.json").read_text())
OWNER_ID, ALICE_ID = 1000, 2000


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


class MemoryChat:
    """The core's Chat, in memory: records what the bot would show in Telegram."""

    def __init__(self, files: dict[int, Path] | None = None):
        self.files = files or {}
        self.known: dict[int, IncomingMessage] = {}  # messages "in Telegram", for fetch/replied_to/recent
        self.messages: dict[int, str] = {}  # id → current text of each bot message (or edited own message)
        self.replies: list[tuple[int, int]] = []  # (bot message id, replied-to message id)
        self.sent_to: list[tuple[str, int]] = []  # (target, bot message id) for send()
        self.documents: list[tuple[str | None, int, str, bytes]] = []  # (target, reply_to, name, data)
        self.edits: list[tuple[int, str]] = []
        self.history: dict[int, list[str]] = {}  # id → every text the message had, in order
        self.progress_edits: list[tuple[int, str]] = []
        self.deleted: list[int] = []
        self.fail_downloads = 0
        self.flood_on_progress = 0.0  # raise RateLimited(this) on progress edits
        self._ids = itertools.count(10_000)

    def add(self, msg: IncomingMessage) -> IncomingMessage:
        self.known[msg.message_id] = msg
        return msg

    async def reply(self, msg: IncomingMessage, html: str) -> Sent:
        message_id = next(self._ids)
        self.messages[message_id] = html
        self.history[message_id] = [html]
        self.replies.append((message_id, msg.message_id))
        return Sent(msg.chat_id, message_id)

    async def send(self, target: str, html: str) -> Sent:
        message_id = next(self._ids)
        self.messages[message_id] = html
        self.sent_to.append((target, message_id))
        return Sent(0, message_id)

    async def send_file(self, msg: IncomingMessage, target: str | None, name: str, data: bytes) -> Sent:
        self.documents.append((target, msg.message_id, name, data))
        return Sent(msg.chat_id, next(self._ids))

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        if sent.message_id not in self.messages and sent.message_id not in self.known:
            raise RuntimeError("MESSAGE_ID_INVALID")
        if progress:
            if self.flood_on_progress:
                raise RateLimited(self.flood_on_progress)
            self.progress_edits.append((sent.message_id, html))
        self.messages[sent.message_id] = html
        self.history.setdefault(sent.message_id, []).append(html)
        self.edits.append((sent.message_id, html))

    async def delete(self, sent: Sent) -> None:
        self.deleted.append(sent.message_id)
        self.messages.pop(sent.message_id, None)

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        if self.fail_downloads:
            self.fail_downloads -= 1
            raise DownloadError("FILE_REFERENCE_EXPIRED")
        shutil.copyfile(self.files[msg.message_id], dest)

    async def fetch(self, chat_id: int, message_id: int) -> IncomingMessage | None:
        return self.known.get(message_id)

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        return self.known.get(msg.reply_to)

    async def recent(self, since: float, per_chat: int) -> list[IncomingMessage]:
        return [m for m in self.known.values() if m.date >= since and m.media][:per_chat]

    def link(self, chat_id: int, message_id: int) -> str:
        return f"https://t.me/c/{chat_id}/{message_id}"

    def texts_for(self, message_id: int) -> list[str]:
        """Current texts of the bot's replies to ``message_id``, in order."""
        return [self.messages[bot_id] for bot_id, to in self.replies if to == message_id
                and bot_id in self.messages]


_doc_ids = itertools.count(5_000_000)


def telethon_message(*, message_id=1, kind="voice", size=None, duration=4, chat=None, out=False,
                     text="", mime=None, post=False, file=None) -> types.Message:
    """A real ``telethon.tl.types.Message`` as Telegram would deliver it.

    kind: voice, video_note, audio, video, document, audio_document (mime only), text.
    chat: a Peer (default: private chat with Alice).
    """
    peer = chat or types.PeerUser(ALICE_ID)
    if file is not None and size is None:
        size = Path(file).stat().st_size
    attributes = {
        "voice": [types.DocumentAttributeAudio(duration=duration, voice=True, waveform=bytes(range(0, 63)))],
        "audio": [types.DocumentAttributeAudio(duration=duration, title="Song", performer="Band"),
                  types.DocumentAttributeFilename("song.mp3")],
        "video_note": [types.DocumentAttributeVideo(duration=duration, w=240, h=240, round_message=True)],
        "video": [types.DocumentAttributeVideo(duration=duration, w=640, h=360),
                  types.DocumentAttributeFilename("clip.mp4")],
        "document": [types.DocumentAttributeFilename("notes.pdf")],
        "audio_document": [types.DocumentAttributeFilename("track.ogg")],
    }
    mimes = {"voice": "audio/ogg", "audio": "audio/mpeg", "video_note": "video/mp4", "video": "video/mp4",
             "document": "application/pdf", "audio_document": "audio/ogg"}
    media = None
    if kind != "text":
        document = types.Document(
            id=next(_doc_ids), access_hash=1, file_reference=b"ref", date=datetime.datetime(2026, 11, 1),
            mime_type=mime or mimes[kind], size=size if size is not None else 20_000, dc_id=2,
            attributes=attributes[kind])
        media = types.MessageMediaDocument(document=document)
    return types.Message(
        id=message_id, peer_id=peer, date=datetime.datetime(2026, 11, 28, 12, 0), message=text,
        out=out, post=post, media=media,
        from_id=None if isinstance(peer, types.PeerUser) else types.PeerUser(ALICE_ID))
