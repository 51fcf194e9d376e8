"""Telethon's messages as the core's plain data (:mod:`voicebot.messages`), and input peers as
text the journal can keep (``user:ID:HASH``…) and back.

Example::

    describe(event.message).media.kind   # MediaKind.VOICE
"""

from __future__ import annotations

from telethon.tl import types
from telethon.tl.custom import Message

from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind


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
        sender_name=display_name(message.sender),
        chat_title=display_name(chat),
        date=message.date.timestamp() if message.date else 0.0,
        reply_to=reply.reply_to_msg_id if reply is not None and reply.reply_to_msg_id != topic_id else None,
        topic_id=topic_id,
        forwarded=message.fwd_from is not None,
        auto_forward=_auto_forward(message),
        peer=peer_token(message.input_chat),
        ref=message,
    )


def _auto_forward(message: Message) -> bool:
    """A channel post Telegram copied into the channel's discussion group: sent by the
    channel itself, with saved_from_peer pointing back at the post (core.telegram.org/api/discussion)."""
    fwd = message.fwd_from
    return (
        fwd is not None
        and isinstance(message.peer_id, types.PeerChannel)
        and isinstance(fwd.saved_from_peer, types.PeerChannel)
        and isinstance(message.from_id, types.PeerChannel)
        and message.from_id.channel_id == fwd.saved_from_peer.channel_id
    )


def display_name(sender) -> str:
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
    return Media(
        kind=kind,
        size=int(document.size or 0),
        duration=duration,
        document_id=document.id,
        view_once=media.ttl_seconds is not None,
    )


def peer_token(peer) -> str:
    """An input peer as text for the journal: ``user:ID:HASH``, ``chat:ID``, ``channel:ID:HASH``."""
    if isinstance(peer, types.InputPeerUser):
        return f"user:{peer.user_id}:{peer.access_hash}"
    if isinstance(peer, types.InputPeerChannel):
        return f"channel:{peer.channel_id}:{peer.access_hash}"
    if isinstance(peer, types.InputPeerChat):
        return f"chat:{peer.chat_id}"
    return ""


def from_token(token: str):
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
