"""Message reactions (core.telegram.org/api/reactions): sending them and who hears of it.

* ``messages.sendReaction`` sets the caller's reactions on a message (an empty list removes
  them). Only Telegram's standard emoji are reactions (``reactionEmoji``; the set of
  ``messages.getAvailableReactions``, as the Bot API lists it under ReactionTypeEmoji); any
  other is REACTION_INVALID, a custom emoji needs Premium (PREMIUM_ACCOUNT_REQUIRED), and so
  does more than one reaction per message (``reactions_user_max_default`` is 1,
  core.telegram.org/api/config). The same set again is MESSAGE_NOT_MODIFIED.
* The caller gets ``updateMessageReactions`` as the result, rendered for it: ``chosen_order``
  set on its own reactions ("After sending the reaction, the chosen_order field of
  reactionCount will be set"). The message's author gets one rendered for the author
  ("Message authors will receive an updateMessageReactions update when a user reacts to their
  message"), with the reactor in ``recent_reactions`` marked ``unread``. Nobody else is told:
  other readers poll with ``messages.getMessagesReactions`` ("Apps should short-poll reactions
  for visible messages … once every 15-30 seconds").
* What the reactor's *other* sessions get is documented nowhere, so it is a switch per chat
  kind (:meth:`Reacting.tell_reactor`): ``nothing`` (the default: the least api/reactions
  promises), ``push`` (the same ``updateMessageReactions``), or ``edit``
  (``updateEditMessage``/``updateEditChannelMessage`` of the message with its reactions and
  ``edit_hide``, as LonamiWebs/Telethon#4093 saw for the same account's reaction; a pts event,
  so ``getDifference`` replays it).
* ``messages.getMessagesReactions`` answers ``updateMessageReactions`` for each id, rendered
  for the caller (method/messages.getMessagesReactions, errors CHANNEL_INVALID,
  CHANNEL_PRIVATE, MSG_ID_INVALID). More than 100 ids: TDLib never asks for more, what
  Telegram does then is undocumented, so the fake refuses it (LIMIT_INVALID, unverified).
* ``updateMessageReactions`` has no pts: it is not replayed by ``updates.getDifference``.
* Private chats and basic groups number messages per account, so each party's update names the
  message by its own id; a message's ``reactions`` are rendered per viewer the same way.
* Broadcast channels show counts only (``can_see_list`` unset, no ``recent_reactions``).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from telethon.tl import TLObject, types

from .records import ChannelRecord, Peer, Post, PtsEvent, RpcFail, UserRecord, now

# Telegram's standard reaction emoji, exactly as the API spells them (no U+FE0F): the list of
# core.telegram.org/bots/api#reactiontypeemoji, which mirrors messages.getAvailableReactions.
STANDARD_REACTIONS = frozenset(
    "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤\u200d🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 "
    "😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨\u200d💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 "
    "😎 👾 🤷\u200d♂ 🤷 🤷\u200d♀ 😡".split()
)
USER_MAX = 1  # reactions_user_max_default
RECENT_MAX = 3  # recent_reactions shown with a message
IDS_MAX = 100  # messages.getMessagesReactions: TDLib's limit per call
CHAT_KINDS = ("private", "group", "supergroup", "channel")
TELLINGS = ("nothing", "push", "edit")


class Reacting:
    """Mixed into :class:`~.world.World`."""

    users: dict[int, UserRecord]
    channels: dict[int, ChannelRecord]
    find_post: Callable[..., Post]
    post_entities: Callable[..., tuple[list[int], list[int]]]
    updates_tl: Callable[..., types.Updates]
    _push: Callable[..., bool]
    _emit: Callable[..., TLObject]
    _emit_channel: Callable[..., PtsEvent]
    message_tl: Callable[..., TLObject]
    channel_update_tl: Callable[..., TLObject]
    _reaction_order = count(1)

    def tell_reactor(self, how: str, *kinds: str) -> None:
        """How the reactor's other sessions learn of its reaction in chats of ``kinds``
        (all of :data:`CHAT_KINDS` when none is named): one of :data:`TELLINGS`."""
        if how not in TELLINGS or not set(kinds) <= set(CHAT_KINDS):
            raise ValueError(f"tell_reactor({how!r}, {kinds!r}): one of {TELLINGS}, kinds among {CHAT_KINDS}")
        told = self.__dict__.setdefault("_told", {})
        told.update(dict.fromkeys(kinds or CHAT_KINDS, how))

    def _telling(self, post: Post) -> str:
        if post.channel_id is not None:
            kind = "channel" if self.channels[post.channel_id].broadcast else "supergroup"
        else:
            kind = "group" if post.chat_id is not None else "private"
        return self.__dict__.get("_told", {}).get(kind, "nothing")

    def react(
        self, user: UserRecord, peer: Peer, msg_id: int, reactions: list[TLObject] | None, origin: object | None = None
    ) -> types.Updates:
        """messages.sendReaction from ``user`` on its message ``msg_id`` in ``peer``."""
        post = self.find_post(user, peer, msg_id)
        if post.action is not None:
            raise RpcFail(400, "MESSAGE_ID_INVALID")
        emoticons = []
        for reaction in reactions or []:
            if isinstance(reaction, types.ReactionCustomEmoji):
                raise RpcFail(403, "PREMIUM_ACCOUNT_REQUIRED")
            if not isinstance(reaction, types.ReactionEmoji) or reaction.emoticon not in STANDARD_REACTIONS:
                raise RpcFail(400, "REACTION_INVALID")
            emoticons.append(reaction.emoticon)
        if len(emoticons) > USER_MAX:
            raise RpcFail(403, "PREMIUM_ACCOUNT_REQUIRED")
        current = [e for e, _, _ in post.reactions.get(user.id, [])]
        if current == emoticons:
            raise RpcFail(400, "MESSAGE_NOT_MODIFIED")
        if emoticons:
            post.reactions[user.id] = [(e, next(self._reaction_order), now()) for e in emoticons]
        else:
            post.reactions.pop(user.id, None)
        result = self.reactions_updates(post, user)
        telling = self._telling(post)
        if telling == "push":
            self._push(user, result, origin)
        elif telling == "edit":
            self._push(user, self._reaction_edit(user, post), origin)
        author = self.users.get(post.sender_id)
        if author is not None and author is not user and self._can_see(author, post):
            self._push(author, self.reactions_updates(post, author), None)
        return result

    def _reaction_edit(self, user: UserRecord, post: Post) -> types.Updates:
        """The message with its new reactions as an edit (``edit_hide``: not a new text)."""
        if post.channel_id is not None:
            channel = self.channels[post.channel_id]
            # A channel pts event: other members fill the gap with getChannelDifference, which
            # renders the message anew (without edit_hide, which the fake does not keep).
            update = self.channel_update_tl(
                channel, self._emit_channel(channel, PtsEvent(0, 1, kind="edit", post=post)), user
            )
        else:
            update = self._emit(user, types.UpdateEditMessage(self.message_tl(post, user.id), 0, 0), 1)
        update.message.edit_hide = True
        return self.updates_tl(user, [update], *self.post_entities(post))

    def messages_reactions(self, user: UserRecord, peer: Peer, ids: list[int]) -> types.Updates:
        """messages.getMessagesReactions: ``updateMessageReactions`` of each message ``user`` has;
        an id naming none (deleted, never sent) is left out (least guaranteed)."""
        if len(ids) > IDS_MAX:
            raise RpcFail(400, "LIMIT_INVALID")  # unverified: see the module docstring
        if any(i <= 0 for i in ids):
            raise RpcFail(400, "MSG_ID_INVALID")
        if isinstance(peer, ChannelRecord):
            participant = peer.participants.get(user.id)
            banned = participant is not None and participant.role == "banned"
            if banned or ((participant is None or not participant.is_member) and peer.username is None):
                raise RpcFail(400, "CHANNEL_PRIVATE")  # "You haven't joined this channel/supergroup"
        updates: list[TLObject] = []
        user_ids: list[int] = [user.id]
        chat_ids: list[int] = []
        for msg_id in ids:
            try:
                post = self.find_post(user, peer, msg_id)
            except RpcFail:
                continue
            updates += self.reactions_updates(post, user).updates
            users, chats = self.post_entities(post)
            user_ids += users
            chat_ids += chats
        return self.updates_tl(user, updates, user_ids, chat_ids)

    def _can_see(self, viewer: UserRecord, post: Post) -> bool:
        if post.channel_id is not None:
            return self.channels[post.channel_id].member(viewer.id) is not None
        return viewer.id in post.copies

    def reactions_updates(self, post: Post, viewer: UserRecord) -> types.Updates:
        """``updateMessageReactions`` of ``post`` as ``viewer`` sees it."""
        update = types.UpdateMessageReactions(
            peer=post.peer_for(viewer.id),
            msg_id=post.msg_id_for(viewer.id),
            top_msg_id=post.topic_id,
            reactions=self.reactions_tl(post, viewer.id) or types.MessageReactions(results=[]),
        )
        return self.updates_tl(viewer, [update], *self.post_entities(post))

    def reactions_tl(self, post: Post, viewer_id: int) -> types.MessageReactions | None:
        """``messageReactions`` for ``viewer_id``: counts per emoji, its own with chosen_order."""
        if not post.reactions:
            return None
        counts: dict[str, int] = {}
        first: dict[str, int] = {}
        for picks in post.reactions.values():
            for emoticon, order, _ in picks:
                counts[emoticon] = counts.get(emoticon, 0) + 1
                first[emoticon] = min(first.get(emoticon, order), order)
        mine = {emoticon: order for emoticon, order, _ in post.reactions.get(viewer_id, [])}
        results = [
            types.ReactionCount(reaction=types.ReactionEmoji(e), count=n, chosen_order=mine.get(e))
            for e, n in sorted(counts.items(), key=lambda item: (-item[1], first[item[0]]))
        ]
        broadcast = post.channel_id is not None and self.channels[post.channel_id].broadcast
        if broadcast:
            return types.MessageReactions(results=results)
        recent = sorted(
            ((order, uid, emoticon, date) for uid, picks in post.reactions.items() for emoticon, order, date in picks),
            reverse=True,
        )[:RECENT_MAX]
        return types.MessageReactions(
            results=results,
            can_see_list=post.chat_id is not None or post.channel_id is not None,
            recent_reactions=[
                types.MessagePeerReaction(
                    peer_id=types.PeerUser(uid),
                    date=date,
                    reaction=types.ReactionEmoji(emoticon),
                    my=uid == viewer_id or None,
                    unread=(uid != viewer_id and post.sender_id == viewer_id) or None,
                )
                for _, uid, emoticon, date in recent
            ],
        )
