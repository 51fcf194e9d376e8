"""The server-side API tests use to shape the world: users, chats, channels, rights, messages.

Mixed into :class:`~.server.FakeTelegramServer`. Everything here acts as the named user would
from an official app (and is refused the same way: :class:`~.records.RpcFail`), without a client.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from telethon.tl import TLObject, types

from .records import (
    ARCHIVE_FOLDER_ID,
    ChannelRecord,
    ChatRecord,
    FileRecord,
    Participant,
    Peer,
    RpcFail,
    UserRecord,
    WebPreview,
    now,
    peer_key,
)
from .world import World

if TYPE_CHECKING:
    from .logins import Logins

# What promote() grants unless told otherwise (core.telegram.org/constructor/chatAdminRights).
ADMIN_RIGHTS = ("post_messages", "edit_messages", "delete_messages", "pin_messages", "manage_topics", "other")


class Scenario:
    world: World
    logins: Logins

    # region users

    def create_user(
        self,
        first_name: str = "User",
        username: str | None = None,
        *,
        last_name: str | None = None,
        phone: str | None = None,
        bot: bool = False,
    ) -> UserRecord:
        """Create an account (server side only). Usernames must be unique."""
        return self.world.create_user(first_name, username, last_name=last_name, phone=phone, bot=bot)

    def user(self, username_or_id: str | int) -> UserRecord:
        """Look a user up by username (with or without ``@``) or id; ``KeyError`` if unknown."""
        found = (
            self.world.users.get(username_or_id)
            if isinstance(username_or_id, int)
            else self.world.user_by_username(username_or_id)
        )
        if found is None:
            raise KeyError(username_or_id)
        return found

    def block(self, blocker: UserRecord, blocked: UserRecord, *, blocking: bool = True) -> None:
        """``blocker`` blocks ``blocked`` (contacts.block): ``blocked``'s messages never arrive
        (a bot gets USER_IS_BLOCKED), ``blocker``'s own sends get YOU_BLOCKED_USER."""
        (blocker.blocked.add if blocking else blocker.blocked.discard)(blocked.id)

    def add_contact(self, user: UserRecord, contact: UserRecord) -> None:
        """``user`` saves ``contact`` in the address book (contacts.addContact), as listed by contacts.getContacts."""
        if contact.id not in user.contacts:
            user.contacts.append(contact.id)

    def delete_account(self, user: UserRecord) -> None:
        """The account is deleted: it shows as ``deleted``, sending to it is INPUT_USER_DEACTIVATED,
        its own sessions get 401 USER_DEACTIVATED."""
        user.deleted = True

    def limit_account(self, user: UserRecord, limited: bool = True) -> None:
        """Spam-limit the account: its sends in supergroups/channels get USER_BANNED_IN_CHANNEL."""
        user.spam_limited = limited

    # endregion

    # region groups and channels

    def create_group(self, title: str, creator: UserRecord, members: list[UserRecord]) -> ChatRecord:
        """Create a basic group as if ``creator`` called messages.createChat."""
        chat, _ = self.world.create_chat(creator, members, title)
        return chat

    def create_supergroup(
        self,
        title: str,
        creator: UserRecord,
        members: list[UserRecord] = (),  # type: ignore[assignment]
        *,
        forum: bool = False,
        slow_mode: int = 0,
        username: str | None = None,
    ) -> ChannelRecord:
        """A supergroup (a forum with ``forum=True``), public when it has a ``username``::

        group = fakegram.create_supergroup("Club", alice, [bob, bot], slow_mode=30)
        """
        return self.world.create_channel_record(
            title, creator, list(members), broadcast=False, forum=forum, slow_mode=slow_mode, username=username
        )

    def create_channel(
        self,
        title: str,
        creator: UserRecord,
        subscribers: list[UserRecord] = (),  # type: ignore[assignment]
        *,
        admins: list[UserRecord] = (),  # type: ignore[assignment]
        username: str | None = None,
        signatures: bool = False,
    ) -> ChannelRecord:
        """A broadcast channel: only the creator and ``admins`` post, subscribers read."""
        channel = self.world.create_channel_record(
            title, creator, [*subscribers, *admins], broadcast=True, username=username, signatures=signatures
        )
        for admin in admins:
            self.promote(channel, admin)
        return channel

    def add_member(self, channel: ChannelRecord, user: UserRecord) -> None:
        """``user`` joins (or is added to) a supergroup or channel."""
        channel.participants[user.id] = Participant(user.id, "member", now(), channel.creator_id)

    def promote(
        self,
        channel: ChannelRecord,
        user: UserRecord,
        *,
        anonymous: bool = False,
        rank: str | None = None,
        rights: tuple[str, ...] = ADMIN_RIGHTS,
    ) -> None:
        """Make ``user`` an admin; ``anonymous`` admins post as the group itself, signed ``rank``."""
        granted = dict.fromkeys(rights, True) | ({"anonymous": True} if anonymous else {})
        participant = channel.participants.get(user.id)
        if participant is not None and participant.role == "creator":
            if anonymous:
                participant.admin_rights.anonymous = True
            participant.rank = rank
            return
        channel.participants[user.id] = Participant(
            user.id, "admin", now(), channel.creator_id, admin_rights=types.ChatAdminRights(**granted), rank=rank
        )

    def restrict(
        self,
        group: ChannelRecord,
        user: UserRecord,
        *,
        send_messages: bool = True,
        send_plain: bool = True,
        send_media: bool = True,
        send_docs: bool = True,
        send_voices: bool = True,
        send_roundvideos: bool = True,
        send_audios: bool = True,
        send_videos: bool = True,
        send_photos: bool = True,
    ) -> None:
        """Restrict a supergroup member (channels.editBanned): ``False`` forbids that kind of message.

        Sending then fails like on Telegram: CHAT_WRITE_FORBIDDEN (no messages at all),
        CHAT_SEND_PLAIN_FORBIDDEN (text), CHAT_SEND_MEDIA_FORBIDDEN (any media),
        CHAT_SEND_DOCS_FORBIDDEN (files), CHAT_SEND_VOICES_FORBIDDEN...
        """
        allowed = dict(
            send_messages=send_messages, send_plain=send_plain, send_media=send_media, send_docs=send_docs,
            send_voices=send_voices, send_roundvideos=send_roundvideos, send_audios=send_audios,
            send_videos=send_videos, send_photos=send_photos,
        )  # fmt: skip
        participant = group.member(user.id)
        if participant is None or participant.is_admin:
            raise ValueError("only plain members can be restricted")
        rights = {name: not ok for name, ok in allowed.items() if not ok}
        participant.banned_rights = types.ChatBannedRights(until_date=None, **rights) if rights else None

    def ban(self, group: ChannelRecord, user: UserRecord) -> None:
        """Kick and ban ``user``: the chat becomes CHANNEL_PRIVATE to it."""
        group.participants[user.id] = Participant(
            user.id, "banned", now(), banned_rights=types.ChatBannedRights(until_date=None, view_messages=True)
        )

    def set_slow_mode(self, group: ChannelRecord, seconds: int) -> None:
        group.slow_mode = seconds

    def link_discussion(self, channel: ChannelRecord, group: ChannelRecord) -> None:
        """Make ``group`` the discussion group of ``channel`` (channels.setDiscussionGroup): every
        new post is auto-forwarded into it."""
        if not channel.broadcast or group.broadcast:
            raise ValueError("link a broadcast channel to a supergroup")
        channel.linked_id, group.linked_id = group.id, channel.id

    def create_topic(self, group: ChannelRecord, title: str, creator: UserRecord) -> int:
        """Create a forum topic; returns its id (``top_msg_id``)."""
        return self.world.create_topic(group, title, creator)

    def close_topic(self, group: ChannelRecord, top_msg_id: int, *, closed: bool = True) -> None:
        """Close (or reopen) a topic: non-admins' sends to it get 406 TOPIC_CLOSED."""
        creator = self.world.users[group.creator_id]
        self.world.set_topic_closed(group, top_msg_id, closed, creator)

    # endregion

    # region logging in (see .logins)

    def register_app(self, api_id: int, api_hash: str) -> None:
        """Accept ``api_id``/``api_hash`` in auth.sendCode and auth.exportLoginToken (an app
        registered at my.telegram.org); others get API_ID_INVALID."""
        self.logins.apps[api_id] = api_hash

    def set_password(self, user: UserRecord, password: str, hint: str | None = None) -> None:
        """Turn on two-step verification: logins then need the password (SRP, auth.checkPassword)."""
        self.logins.set_password(user, password, hint)

    def login_code(self, phone: str) -> str:
        """The last login code sent to ``phone`` (what its owner reads in the app or the SMS)."""
        digits = re.sub(r"\D", "", phone)
        return self.logins.codes[digits].code

    def home_on(self, user: UserRecord, dc_id: int) -> None:
        """Make ``user``'s account live on data centre ``dc_id`` (1 or 2): a login from DC 2 is
        then redirected (PHONE_MIGRATE_X, auth.loginTokenMigrateTo), and its session strings
        name that DC."""
        user.home_dc = dc_id

    def store_files_on(self, dc_id: int) -> None:
        """Keep the files uploaded or sent from now on in data centre ``dc_id`` (their
        Document's ``dc_id``); fetching them elsewhere is FILE_MIGRATE_X."""
        self.world.file_dc = dc_id  # type: ignore[attr-defined]

    def set_code_type(self, kind: TLObject | None) -> None:
        """Answer auth.sendCode with ``kind`` (an ``auth.SentCodeType*``, or ``auth.SentCodePaymentRequired``)
        instead of app or SMS; None restores. Example::

            fakegram.set_code_type(types.auth.SentCodeTypeSetUpEmailRequired())
        """
        self.logins.code_type = kind

    def expire_login_codes(self) -> None:
        """Make every code sent so far expired: signing in with it is PHONE_CODE_EXPIRED."""
        self.logins.expire_codes()

    def expire_login_tokens(self) -> None:
        """Make every QR login token expired: accepting it is AUTH_TOKEN_EXPIRED."""
        self.logins.expire_tokens()

    def set_login_token_lifetime(self, seconds: float) -> None:
        """How long new QR login tokens live (Telegram: "usually 30 seconds")."""
        self.logins.token_lifetime = seconds

    def terminate_sessions(self, user: UserRecord) -> int:
        """Log out every session of ``user`` (as "Terminate all other sessions" would): their
        requests get 401 AUTH_KEY_UNREGISTERED. Returns how many there were."""
        sessions = self.logins.logged_in(user)
        for auth in sessions:
            self.logins.revoke(auth)
        return len(sessions)

    # endregion

    # region dialogs

    def pin_dialog(self, user: UserRecord, peer: Peer, *, pinned: bool = True) -> None:
        """Pin ``user``'s dialog with ``peer``: pinned dialogs come first, newest pin on top."""
        self.world.pin_dialog(user, peer_key(peer), pinned)

    def archive_dialog(self, user: UserRecord, peer: Peer, *, archived: bool = True) -> None:
        """Move the dialog into the archive (folder 1) or back."""
        user.folders[peer_key(peer)] = ARCHIVE_FOLDER_ID if archived else 0

    # endregion

    # region messages

    def tell_reactor(self, how: str, *kinds: str) -> None:
        """How a reactor's other sessions hear of its reaction in ``kinds`` of chat (private,
        group, supergroup, channel; all when none is named): nothing (the default), push, edit."""
        self.world.tell_reactor(how, *kinds)

    def send_message(
        self,
        sender: UserRecord,
        peer: Peer,
        text: str = "",
        *,
        voice: bytes | None = None,
        video_note: bytes | None = None,
        audio: bytes | None = None,
        video: bytes | None = None,
        document: bytes | None = None,
        photo: bytes | None = None,
        duration: int = 1,
        file_name: str | None = None,
        mime_type: str | None = None,
        ttl_seconds: int | None = None,
        reply_to: int | None = None,
        top_msg_id: int | None = None,
        entities: list[TLObject] | None = None,
        date: int | None = None,
        link_preview: str | None = None,
        preview_video: bytes | None = None,
        send_as: ChannelRecord | None = None,
    ) -> int:
        """Send as ``sender`` without any client (e.g. a user talking to the bot under test).

        One of ``voice``/``video_note``/``audio``/``video``/``document``/``photo`` attaches a file;
        ``ttl_seconds`` makes it view-once; ``reply_to`` is a message id in *sender's* numbering
        (a topic id to post into a forum topic); ``date`` backdates the message (edit window);
        ``link_preview`` adds a preview of that URL, carrying ``preview_video`` if given.
        Returns the id of the sender's copy::

            fakegram.send_message(alice, bot_user, voice=ogg, duration=3, ttl_seconds=2**31 - 1)
            fakegram.send_message(bob, forum, "in the topic", reply_to=topic_id)
        """
        media = self._media(voice=voice, video_note=video_note, audio=audio, video=video, document=document,
                            photo=photo, duration=duration, file_name=file_name, mime_type=mime_type)  # fmt: skip
        preview = None
        if link_preview is not None:
            preview = WebPreview(link_preview, id=len(self.world.files) + 1)
            if preview_video is not None:
                preview.document = self._media(video=preview_video, duration=duration)
        updates = self.world.send(
            sender, peer, text=text, media=media, ttl_seconds=ttl_seconds, web_preview=preview,
            reply_to_id=reply_to, top_msg_id=top_msg_id, entities=entities, date=date, send_as=send_as,
        )  # fmt: skip
        return _new_message_id(updates)

    def _media(
        self, *, voice=None, video_note=None, audio=None, video=None, document=None, photo=None,
        duration: int = 1, file_name: str | None = None, mime_type: str | None = None,
    ) -> FileRecord | None:  # fmt: skip
        world = self.world
        if voice is not None:
            attributes = [types.DocumentAttributeAudio(duration=duration, voice=True, waveform=bytes(32))]
            return world.add_file(
                voice,
                mime_type=mime_type or "audio/ogg",
                attributes=[*attributes, types.DocumentAttributeFilename(file_name or "voice.ogg")],
            )
        if video_note is not None:
            attributes = [types.DocumentAttributeVideo(duration=duration, w=240, h=240, round_message=True)]
            return world.add_file(video_note, mime_type=mime_type or "video/mp4", attributes=attributes)
        if audio is not None:
            attributes = [
                types.DocumentAttributeAudio(duration=duration, title="Song", performer="Band"),
                types.DocumentAttributeFilename(file_name or "audio.mp3"),
            ]
            return world.add_file(audio, mime_type=mime_type or "audio/mpeg", attributes=attributes)
        if video is not None:
            attributes = [
                types.DocumentAttributeVideo(duration=duration, w=640, h=360, supports_streaming=True),
                types.DocumentAttributeFilename(file_name or "video.mp4"),
            ]
            return world.add_file(video, mime_type=mime_type or "video/mp4", attributes=attributes)
        if document is not None:
            return world.add_file(
                document,
                mime_type=mime_type or "application/octet-stream",
                attributes=[types.DocumentAttributeFilename(file_name or "file.bin")],
            )
        if photo is not None:
            return world.add_file(photo, mime_type="image/jpeg", attributes=[], is_photo=True)
        return None  # fmt: skip

    def forward(self, user: UserRecord, to_peer: Peer, from_peer: Peer, msg_id: int, *,
                drop_author: bool = False) -> int:  # fmt: skip
        """``user`` forwards its message ``msg_id`` of ``from_peer`` to ``to_peer``; the new id."""
        return _new_message_id(self.world.forward(user, from_peer, [msg_id], to_peer, drop_author=drop_author))

    def age_message(self, user: UserRecord, peer: Peer, msg_id: int, seconds: int) -> None:
        """Make a message ``seconds`` older (e.g. past the 48 h edit window)."""
        self.world.find_post(user, peer, msg_id).date -= seconds

    def expire_file_references(self) -> None:
        """Rotate every file reference: downloads with an old one get FILE_REFERENCE_EXPIRED."""
        self.world.expire_file_references()

    def limit_difference(self, pts_total: int | None) -> None:
        """Answer updates.getDifference with differenceTooLong past ``pts_total`` events (None: never),
        as Telegram does past its own default limit (method/updates.getDifference)."""
        self.world.difference_limit = pts_total

    def history(self, user: UserRecord, peer: Peer) -> list[TLObject]:
        """``user``'s view of its dialog with ``peer``, newest first (TL objects)."""
        if isinstance(peer, ChannelRecord):
            posts = [p for _, p in sorted(peer.messages.items(), reverse=True)]
        else:
            key = peer_key(peer)
            posts = [p for _, p in sorted(user.box.items(), reverse=True) if p.dialog_key(user.id) == key]
        return [self.world.message_tl(post, user.id) for post in posts]

    # endregion


def _new_message_id(updates: TLObject) -> int:
    for update in getattr(updates, "updates", None) or []:
        if isinstance(update, (types.UpdateNewMessage, types.UpdateNewChannelMessage)):
            return update.message.id
    raise RpcFail(500, "NO_MESSAGE_SENT")
