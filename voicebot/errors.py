"""Typed errors. Each carries a message fit to show a user or print on one line.

Example::

    try:
        audio = load_audio(path)
    except AudioError as exc:
        print(f"cannot read {path}: {exc}")
"""


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


class DownloadError(VoicebotError):
    """Fetching the media from Telegram failed."""


class StorageError(VoicebotError):
    """Our own disk failed us: temp or data directory full, read-only or missing."""


class Interrupted(VoicebotError):
    """A job was stopped by shutdown; the journal resumes it on the next start."""


class LockedError(VoicebotError):
    """Another voicebot process holds the data directory (session) lock."""


class NotLoggedIn(VoicebotError):
    """The session has no authorised account, and there is no terminal to log in on."""


class RateLimited(VoicebotError):
    """Telegram asked us to wait ``seconds`` before the next such request (a flood limit)."""

    def __init__(self, seconds: float):
        super().__init__(f"rate limited for {seconds:.0f} s")
        self.seconds = seconds
