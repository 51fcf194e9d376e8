"""voicebot: a Telegram userbot that transcribes voice messages locally with faster-whisper."""

__version__ = "0.1.0"
