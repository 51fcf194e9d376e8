"""Turning transcripts into Telegram messages: HTML escaping, splitting, the bot's own words.

Telegram caps a message at 4096 characters. We measure the *formatted* HTML in UTF-16
code units (what Telegram counts), which is never less than the text Telegram shows,
so every part fits however Telegram parses it.

Example::

    parts = split_transcript("Hello <world>. " * 1000)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
"""

from __future__ import annotations

import html
import re

MESSAGE_LIMIT = 4096

_TEXTS = {
    "en": {
        "placeholder": "🎙 transcribing…",
        "queued": "🎙 queued ({position} ahead)…",
        "no_speech": "🔇 no speech detected",
        "too_big": "⚠️ this file is {size_mb:.0f} MB; the limit is {limit_mb:.0f} MB",
        "too_long": "⚠️ this recording is {minutes:.0f} min long; the limit is {limit_minutes:.0f} min",
        "queue_full": "⏳ too many recordings queued; try again later",
        "unreadable": "⚠️ could not read this recording: {reason}",
        "download_failed": "⚠️ could not download this recording; try again later",
        "failed": "⚠️ transcription failed; see the bot's log",
    },
    "ru": {
        "placeholder": "🎙 расшифровываю…",
        "queued": "🎙 в очереди (впереди: {position})…",
        "no_speech": "🔇 речь не обнаружена",
        "too_big": "⚠️ файл весит {size_mb:.0f} МБ; предел — {limit_mb:.0f} МБ",
        "too_long": "⚠️ запись длится {minutes:.0f} мин; предел — {limit_minutes:.0f} мин",
        "queue_full": "⏳ слишком много записей в очереди; попробуйте позже",
        "unreadable": "⚠️ не удалось прочитать запись: {reason}",
        "download_failed": "⚠️ не удалось скачать запись; попробуйте позже",
        "failed": "⚠️ ошибка расшифровки; подробности в журнале бота",
    },
}


def say(key: str, language: str = "en", **values: object) -> str:
    """The bot's own message ``key`` in ``language``, HTML-escaped and ready to send.

    Example::

        say("too_big", "en", size_mb=80, limit_mb=50)  # '⚠️ this file is 80 MB; the limit is 50 MB'
    """
    template = _TEXTS.get(language, _TEXTS["en"])[key]
    return html.escape(template.format(**values), quote=False)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape a transcript for ``parse_mode='html'``."""
    return html.escape(text, quote=False)


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


def split_transcript(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Escape ``text`` and split it into HTML messages of at most ``limit`` UTF-16 units.

    Splits prefer sentence ends, then spaces, and only cut inside a word that is longer
    than a whole message. No text is dropped: un-escaping and joining the parts with
    single spaces gives back ``text`` with its whitespace runs collapsed. When there is
    more than one part, each starts with a ``(i/n)`` counter.

    Example::

        split_transcript("One. Two.", limit=8)  # ['(1/2) One.', '(2/2) Two.']
    """
    words = " ".join(text.split())
    if utf16_len(escape(words)) <= limit:
        return [escape(words)] if words else []
    # Reserve room for the "(i/n) " counter; 13 units fit "(9999/9999) ".
    budget = limit - 13
    if budget < 8:
        raise ValueError("limit too small to split into")
    chunks = _pack(_pieces(words, budget), budget)
    total = len(chunks)
    return [f"({i}/{total}) {chunk}" for i, chunk in enumerate(chunks, 1)]


def _pieces(words: str, budget: int) -> list[str]:
    """Sentences, with any sentence that alone exceeds ``budget`` broken into words/slices."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(words):
        if utf16_len(escape(sentence)) <= budget:
            pieces.append(sentence)
            continue
        for word in sentence.split(" "):
            pieces.extend(_slice_word(word, budget))
    return pieces


def _slice_word(word: str, budget: int) -> list[str]:
    if utf16_len(escape(word)) <= budget:
        return [word]
    slices, current = [], ""
    for char in word:
        if utf16_len(escape(current + char)) > budget:
            slices.append(current)
            current = ""
        current += char
    return slices + [current]


def _pack(pieces: list[str], budget: int) -> list[str]:
    """Greedily join pieces with spaces into escaped chunks of at most ``budget`` units."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if utf16_len(escape(candidate)) <= budget:
            current = candidate
        else:
            chunks.append(escape(current))
            current = piece
    if current:
        chunks.append(escape(current))
    return chunks
