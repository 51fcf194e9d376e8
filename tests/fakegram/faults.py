"""Fault injection: answer chosen calls with any RPC error, drop connections, slow downloads.

The error code of an injected error is inferred as Telegram uses it (core.telegram.org/api/errors):
420 for the flood family (``FLOOD_WAIT_X``, ``FLOOD_PREMIUM_WAIT_X``, ``SLOWMODE_WAIT_X``...),
the code a method page documents for the name where known, else the code Telethon's
error list (generated from Telegram's) gives it, else 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telethon.errors import rpcerrorlist
from telethon.tl import TLObject

from .records import RpcFail, UserRecord, peer_key
from .world import World

# "420 FLOOD: the maximum allowed number of attempts to invoke the given method with the given
# input parameters has been exceeded" (core.telegram.org/api/errors#420-flood).
FLOOD_RE = re.compile(r"(FLOOD|FLOOD_PREMIUM|SLOWMODE|FLOOD_TEST_PHONE|TAKEOUT_INIT_DELAY|2FA_CONFIRM)_WAIT_\d+")
# Codes from core.telegram.org/method/messages.sendMessage and messages.sendMedia where they
# differ from (or are missing in) Telethon's list.
DOCUMENTED_CODES = {
    "CHANNEL_PRIVATE": 406,
    "CHAT_ADMIN_REQUIRED": 403,
    "TOPIC_CLOSED": 406,
    "TOPIC_DELETED": 406,
    "USER_IS_BLOCKED": 403,
    "CHAT_SEND_DOCS_FORBIDDEN": 403,
    "CHAT_SEND_AUDIOS_FORBIDDEN": 403,
    "CHAT_SEND_ROUNDVIDEOS_FORBIDDEN": 403,
    "CHAT_SEND_VOICES_FORBIDDEN": 403,
    "CHAT_SEND_PLAIN_FORBIDDEN": 403,
    "CHAT_SEND_MEDIA_FORBIDDEN": 403,
    "CHAT_WRITE_FORBIDDEN": 403,
}


def error_code(message: str) -> int:
    """The code Telegram sends with the RPC error ``message``.

    >>> error_code("SLOWMODE_WAIT_5"), error_code("PEER_FLOOD"), error_code("CHAT_WRITE_FORBIDDEN")
    (420, 400, 403)
    """
    if FLOOD_RE.fullmatch(message):
        return 420
    if message in DOCUMENTED_CODES:
        return DOCUMENTED_CODES[message]
    known = rpcerrorlist.rpc_errors_dict.get(message)
    if known is None:
        known = next((cls for pattern, cls in rpcerrorlist.rpc_errors_re if re.fullmatch(pattern, message)), None)
    return getattr(known, "code", None) or 400


@dataclass
class _Fault:
    method: str
    times: int
    user_id: int | None
    code: int = 0
    message: str = ""
    drop: bool = False
    drop_after: bool = False  # carry the call out, then drop the connection before answering
    peer: tuple[str, int] | None = None  # only calls aimed at this dialog
    nth: int = 0  # only the nth matching call (1-based), 0 = the next ones
    seen: int = 0


def method_name(method: str | type) -> str:
    return method if isinstance(method, str) else method.__name__


def request_peer(world: World, user: UserRecord, query: TLObject) -> tuple[str, int] | None:
    """The dialog a request is aimed at (``peer``, ``to_peer`` or ``channel``), if it names one."""
    for attribute in ("peer", "to_peer", "channel"):
        target = getattr(query, attribute, None)
        if isinstance(target, TLObject):
            try:
                return peer_key(world.resolve_peer(user, target))
            except RpcFail:
                return None
    return None


class FaultInjection:
    """Mixed into :class:`~.server.FakeTelegramServer`."""

    world: World
    _faults: list[_Fault]
    _get_file_delay: float

    def inject_error(
        self,
        method: str | type,
        message: str,
        code: int | None = None,
        times: int = 1,
        *,
        user: UserRecord | None = None,
        peer: object | None = None,
        nth: int = 0,
    ) -> None:
        """Answer calls of ``method`` with ``rpc_error(code, message)``; any error name works.

        ``code`` defaults to Telegram's (:func:`error_code`). ``user``: only that user's calls;
        ``peer`` (a user, group or channel record): only calls aimed at that dialog; ``nth``:
        skip matching calls until the nth. Example::

            fakegram.inject_error("SendMessageRequest", "SLOWMODE_WAIT_5")        # 420
            fakegram.inject_error("SendMediaRequest", "CHAT_SEND_DOCS_FORBIDDEN", peer=group)
            fakegram.inject_error("EditMessageRequest", "FLOOD_PREMIUM_WAIT_3", nth=2)
        """
        key = peer_key(peer) if peer is not None else None  # type: ignore[arg-type]
        code = error_code(message) if code is None else code
        self._faults.append(_Fault(method_name(method), times, user.id if user else None, code, message,
                                   peer=key, nth=nth))  # fmt: skip

    def inject_flood_wait(
        self, method: str | type, seconds: int, times: int = 1, *, user: UserRecord | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with 420 ``FLOOD_WAIT_<seconds>``.

        ``method`` is the Telethon request class or its name, e.g. ``"SendMessageRequest"``.
        """
        self.inject_error(method, f"FLOOD_WAIT_{seconds}", 420, times, user=user)

    def slow_get_file(self, delay_s: float) -> None:
        """Delay every ``upload.getFile`` answer by ``delay_s`` seconds (0 restores)."""
        self._get_file_delay = delay_s

    def fail_get_file(
        self,
        times: int = 1,
        *,
        code: int = 400,
        message: str = "FILE_ID_INVALID",
        drop: bool = False,
        user: UserRecord | None = None,
    ) -> None:
        """Make the next ``times`` ``upload.getFile`` calls fail.

        By default with a 400 error that Telethon raises to the caller (``FileIdInvalidError``);
        ``code=500, message="INTERNAL"`` is retried by Telethon itself; ``drop=True`` aborts the
        connection instead of answering (Telethon reconnects and re-sends the request).
        """
        self._faults.append(_Fault("GetFileRequest", times, user.id if user else None, code, message, drop))

    def lose_answers(self, method: str | type, times: int = 1, *, user: UserRecord | None = None) -> None:
        """Carry out the next ``times`` calls of ``method``, then drop the connection before
        the answer leaves: a network failure after Telegram acted. Telethon reconnects and
        sends the same request again (same ``random_id``), which Telegram refuses with
        RANDOM_ID_DUPLICATE for a message it already has. Example::

            fakegram.lose_answers("SendMessageRequest", user=bot)
        """
        self._faults.append(_Fault(method_name(method), times, user.id if user else None, drop_after=True))

    def _take_fault(self, method: str, user: UserRecord | None, query: TLObject) -> _Fault | None:
        """The next fault for this call; ``user`` is None for a session not logged in."""
        for fault in self._faults:
            if fault.method != method or fault.user_id not in (None, user.id if user else None):
                continue
            if fault.peer is not None and (user is None or request_peer(self.world, user, query) != fault.peer):
                continue
            fault.seen += 1
            if fault.nth and fault.seen < fault.nth:
                continue
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            return fault
        return None
