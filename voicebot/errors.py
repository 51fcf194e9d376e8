"""Typed errors. Each carries a message fit to show a user or print on one line.

Example::

    try:
        audio = load_audio(path)
    except AudioError as exc:
        print(f"cannot read {path}: {exc}")
"""

from __future__ import annotations

import enum

LOGIN_HINT = (
    "run `python -m voicebot login` (Docker: `docker compose run --rm voicebot login`; "
    "add --qr to scan a QR code with your phone)"
)


class VoicebotError(Exception):
    """Base class of every error voicebot raises on purpose."""


class ConfigError(VoicebotError):
    """A setting is missing or invalid. ``setting`` names it."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class AudioError(VoicebotError):
    """A file could not be read as audio (empty, truncated, not audio, no audio track)."""


class TooLongError(VoicebotError):
    """The media is over the configured size or duration cap."""


class TranscriptionError(VoicebotError):
    """The speech engine failed on an input it accepted."""


class ModelError(VoicebotError):
    """The Whisper model could not be found, downloaded or loaded."""


class LlmError(VoicebotError):
    """The LLM (``LLM_URL``) is down, slower than ``LLM_TIMEOUT_SECONDS``, refused the request
    (4xx/5xx, 429 included) or answered something malformed. The message is one line, never
    the key. ``status``: the HTTP status when there was one; ``retry_after``: a 429's or 503's
    ``Retry-After`` in seconds, when it said."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class DownloadError(VoicebotError):
    """Fetching the media from Telegram failed."""


class StorageError(VoicebotError):
    """Our own disk failed us: temp or data directory full, read-only or missing."""


class Interrupted(VoicebotError):
    """A job was stopped by shutdown; the journal resumes it on the next start."""


class LockedError(VoicebotError):
    """Another voicebot process holds the data directory (session) lock."""


class NotLoggedIn(VoicebotError):
    """The session has no logged-in account (never logged in, logged out, or terminated from
    another device): ``run`` says how to log in and exits 2."""


class WorkerWedged(VoicebotError):
    """A job has run twice past its limit (``voicebot.core.health``): the bot exits non-zero so
    its supervisor (Docker's restart policy, systemd) starts it again and the journal resumes."""


class LoginFailed(VoicebotError):
    """An interactive login gave up: too many wrong codes, a long flood wait, Ctrl+D."""


class TelegramError(VoicebotError):
    """A request to Telegram was refused. ``name`` is Telegram's error name
    (``CHAT_WRITE_FORBIDDEN``), ``code`` its class (400, 403, 420, 500…).

    The adapter raises it for every RPC error; :attr:`kind` says what the core does about
    it (see :func:`classify`), so the decision is made here, offline and testable.

    Example::

        try:
            await chat.reply(msg, "hi")
        except TelegramError as exc:
            exc.kind   # Kind.FORBIDDEN for CHAT_WRITE_FORBIDDEN
    """

    def __init__(self, name: str, code: int = 400, seconds: float | None = None):
        super().__init__(name if seconds is None else f"{name} ({seconds:.0f} s)")
        self.name = name
        self.code = code
        self.seconds = seconds

    @property
    def kind(self) -> Kind:
        return classify(self.name, self.code, self.seconds)


class RateLimited(TelegramError):
    """Telegram asked us to wait ``seconds`` before the next such request (a flood limit)."""

    def __init__(self, seconds: float, name: str = "FLOOD_WAIT"):
        super().__init__(name, 420, seconds)


class Unreachable(TelegramError):
    """Telegram could not be reached (connection lost, timeout, server error): try again later."""

    def __init__(self, reason: str):
        super().__init__(reason, 500)


class Kind(enum.Enum):
    """What a Telegram error means for the message being sent or edited."""

    WAIT = "wait"  # a flood limit: the same request works after ``seconds``
    RETRY = "retry"  # network or server trouble: the same request may work later
    FORBIDDEN = "forbidden"  # we may not post in this chat (at all, or as plain text)
    NO_FILES = "no_files"  # we may post text here, but not documents/media
    NOT_EDITABLE = "not_editable"  # this message cannot be edited (gone, too old, not ours)
    UNCHANGED = "unchanged"  # an edit to the same text: nothing to do
    SENT = "sent"  # the same random_id was already used: the message exists
    BAD_REPLY = "bad_reply"  # the message replied to cannot be quoted: send without the reply
    FAILED = "failed"  # anything else: this request will never work


# Sources: Telegram's error lists for messages.sendMessage / sendMedia / editMessage
# (core.telegram.org/method/messages.sendMessage#possible-errors) and Telethon 1.45's
# errors/rpcerrorlist.py, which names each one.
_FORBIDDEN = frozenset(
    {
        "CHAT_WRITE_FORBIDDEN",  # not a member, or a channel subscriber
        "CHAT_ADMIN_REQUIRED",  # posting in a broadcast channel one does not admin
        "CHAT_RESTRICTED",
        "CHAT_GUEST_SEND_FORBIDDEN",
        "CHANNEL_PRIVATE",
        "CHANNEL_INVALID",
        "USER_BANNED_IN_CHANNEL",  # banned or muted in supergroups
        "CHAT_SEND_PLAIN_FORBIDDEN",  # text is off for members (default banned rights)
        "USER_IS_BLOCKED",
        "YOU_BLOCKED_USER",
        "INPUT_USER_DEACTIVATED",
        "USER_DEACTIVATED_BAN",
        "PEER_ID_INVALID",
        "PEER_FLOOD",  # PEER_FLOOD: the account is spam-limited for this peer
        "PRIVACY_PREMIUM_REQUIRED",
        "ALLOW_PAYMENT_REQUIRED",  # the recipient demands Premium / stars
        "TOPIC_CLOSED",
        "TOPIC_DELETED",
        "CHAT_ID_INVALID",
        "ENCRYPTION_DECLINED",
        "SCHEDULE_STATUS_PRIVATE",
    }
)
_NO_FILES = frozenset(
    {"CHAT_SEND_DOCS_FORBIDDEN", "CHAT_SEND_MEDIA_FORBIDDEN", "CHAT_SEND_PHOTOS_FORBIDDEN", "WEBPAGE_MEDIA_EMPTY"}
)
_NOT_EDITABLE = frozenset(
    {
        "MESSAGE_ID_INVALID",
        "MESSAGE_EDIT_TIME_EXPIRED",
        "MESSAGE_AUTHOR_REQUIRED",
        "MESSAGE_EMPTY",
        "MEDIA_CAPTION_TOO_LONG",
        "MEDIA_PREV_INVALID",
        "INPUT_CONSTRUCTOR_INVALID",
        "CHAT_FORWARDS_RESTRICTED",
        "MSG_ID_INVALID",
    }
)


def classify(name: str, code: int = 400, seconds: float | None = None) -> Kind:
    """What an error named ``name`` (code ``code``) means for a send or an edit.

    Example::

        classify("SLOWMODE_WAIT_X", 420, 30)   # Kind.WAIT
        classify("CHAT_SEND_DOCS_FORBIDDEN")   # Kind.NO_FILES
    """
    if seconds is not None or code == 420:
        return Kind.WAIT  # FLOOD_WAIT, FLOOD_PREMIUM_WAIT, SLOWMODE_WAIT: Telethon's FloodError family
    if name == "MESSAGE_NOT_MODIFIED":
        return Kind.UNCHANGED
    if name == "RANDOM_ID_DUPLICATE":
        return Kind.SENT
    if name in ("REPLY_MESSAGE_ID_INVALID", "REPLY_TO_INVALID", "REPLY_TO_USER_INVALID"):
        return Kind.BAD_REPLY
    if name in _NO_FILES:
        return Kind.NO_FILES
    if name in _FORBIDDEN or (name.startswith("CHAT_SEND_") and name.endswith("_FORBIDDEN")):
        return Kind.FORBIDDEN  # CHAT_SEND_<kind>_FORBIDDEN: that kind of content is off here
    if name in _NOT_EDITABLE:
        return Kind.NOT_EDITABLE
    if code >= 500 or code < 0:  # -503: Telegram's "timeout" transport error
        return Kind.RETRY
    return Kind.FAILED
