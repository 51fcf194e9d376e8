"""``messages.search`` with a media filter (core.telegram.org/method/messages.search).

What the bot's backfill needs, by the documentation: messages of one chat that match a
``MessagesFilter``, newest first, ``min_date``/``max_date`` exclusive bounds ("only messages with
date bigger than min_date", "smaller than max_date"), ``offset_id``/``add_offset``/``limit`` as in
every history method (core.telegram.org/api/offsets), at most 100 a call. ``q`` matches text as a
plain substring: Telegram's own matching is fuzzier (grammers' docs say so), which only ever finds
more. The filters the fake knows are the media ones; any other is refused, so a test cannot lean
on a filter the fake would only pretend to apply.
"""

from __future__ import annotations

from telethon.tl import TLObject, functions, types

from .records import RpcFail
from .rpc import RpcContext, handles
from .rpc_messages import chat_posts, messages_result, page

MAX_LIMIT = 100
# inputMessagesFilter* → the file kinds it returns (FileRecord.kind). RoundVoice: "Return only
# round videos and voice notes"; Music: audio files, not voice notes; Video: videos, not round ones.
FILTERS: dict[type, frozenset[str] | None] = {
    types.InputMessagesFilterEmpty: None,
    types.InputMessagesFilterVoice: frozenset({"voice"}),
    types.InputMessagesFilterRoundVideo: frozenset({"round"}),
    types.InputMessagesFilterRoundVoice: frozenset({"voice", "round"}),
    types.InputMessagesFilterMusic: frozenset({"audio"}),
    types.InputMessagesFilterVideo: frozenset({"video"}),
    types.InputMessagesFilterDocument: frozenset({"document", "audio", "video", "voice", "round"}),
}


def _date(value) -> int:
    return int(value.timestamp()) if value else 0  # a 0 date arrives as the epoch, not None


@handles(functions.messages.SearchRequest)
def search(ctx: RpcContext, request: functions.messages.SearchRequest) -> TLObject:
    if type(request.filter) not in FILTERS:
        raise RpcFail(400, "INPUT_FILTER_INVALID")  # the fake's limit, named as Telegram names a bad filter
    kinds = FILTERS[type(request.filter)]
    posts, channel = chat_posts(ctx, request.peer)
    min_date, max_date = _date(request.min_date), _date(request.max_date)
    posts = [
        p
        for p in posts
        if p.action is None
        and (kinds is None or (p.media is not None and p.media.kind in kinds))
        and (not request.q or request.q.lower() in (p.text or "").lower())
        and (not min_date or p.date > min_date)
        and (not max_date or p.date < max_date)
    ]
    window = page(ctx, posts, request, min(max(request.limit, 0), MAX_LIMIT))
    return messages_result(ctx, window, channel=channel)
