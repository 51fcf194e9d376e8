"""Edits: what Telegram lets one edit, and the errors for the rest.

Modelled on TDLib ``MessagesManager::can_edit_message`` (td/telegram/MessagesManager.cpp) and the
errors of core.telegram.org/method/messages.editMessage.
"""

from __future__ import annotations

from collections.abc import Callable

from telethon.tl import TLObject, types

from .messages import check_length, stored_entities
from .records import EDIT_TIME_LIMIT, ChannelRecord, FileRecord, Peer, Post, RpcFail, UserRecord, now


class Editing:
    users: dict[int, UserRecord]
    _emit: Callable[..., TLObject]
    _push: Callable[..., bool]
    message_tl: Callable[..., TLObject]
    updates_tl: Callable[..., types.Updates]
    post_entities: Callable[..., tuple[list[int], list[int]]]
    find_post: Callable[..., Post]
    channel_edit: Callable[..., types.Updates]

    def check_edit(self, editor: UserRecord, post: Post, *, is_saved: bool, may_edit_others: bool = False,
                   time_limited: bool = True) -> None:  # fmt: skip
        """Refuse edits Telegram refuses (TDLib MessagesManager::can_edit_message).

        The error names are those of core.telegram.org/method/messages.editMessage; where the
        server's name for a refusal is undocumented (forwarded, round video, service message:
        TDLib refuses them itself with "Message can't be edited"), the fake answers the
        generic MESSAGE_ID_INVALID.
        """
        if post.sender_id != editor.id and not may_edit_others:
            raise RpcFail(403, "MESSAGE_AUTHOR_REQUIRED")
        if post.action is not None or post.fwd_from is not None:
            raise RpcFail(400, "MESSAGE_ID_INVALID")  # TDLib: is_message_forward / service content
        if post.media is not None and post.media.kind == "round":
            raise RpcFail(400, "MESSAGE_ID_INVALID")  # TDLib is_editable_message_content: VideoNote is not
        # 48 h window (config.edit_time_limit), except in Saved Messages.
        if time_limited and not is_saved and now() - post.date >= EDIT_TIME_LIMIT:
            raise RpcFail(400, "MESSAGE_EDIT_TIME_EXPIRED")

    def edit(
        self,
        editor: UserRecord,
        peer: Peer,
        msg_id: int,
        *,
        text: str | None,
        entities: list[TLObject] | None,
        media: FileRecord | None,
        origin: object | None = None,
    ) -> types.Updates:
        post = self.find_post(editor, peer, msg_id)
        if isinstance(peer, ChannelRecord):
            return self.channel_edit(editor, peer, post, text=text, entities=entities, media=media, origin=origin)
        self.check_edit(editor, post, is_saved=peer is editor)
        self.apply_edit(post, text=text, entities=entities, media=media)
        user_ids, chat_ids = self.post_entities(post)
        result = None
        for owner_id in post.copies:
            owner = self.users[owner_id]
            update = self._emit(owner, types.UpdateEditMessage(self.message_tl(post, owner_id), 0, 0), 1)
            self._push(
                owner,
                self.updates_tl(owner, [update], user_ids, chat_ids),
                origin if owner is editor else None,
            )
            if owner is editor:
                result = self.updates_tl(owner, [update], user_ids, chat_ids)
        assert result is not None
        return result

    def apply_edit(
        self, post: Post, *, text: str | None, entities: list[TLObject] | None, media: FileRecord | None
    ) -> None:
        new_text = post.text if text is None else text
        new_entities = post.entities if text is None else stored_entities(entities)
        if new_text == post.text and new_entities == post.entities and media is None:
            raise RpcFail(400, "MESSAGE_NOT_MODIFIED")
        new_media = media or post.media
        if not new_text and new_media is None:
            raise RpcFail(400, "MESSAGE_EMPTY")
        check_length(new_text, has_media=new_media is not None)
        post.text, post.entities, post.media, post.edit_date = new_text, new_entities, new_media, now()
