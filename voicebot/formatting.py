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
        "disk": "⚠️ the bot could not store this recording (its disk is full or read-only)",
        "failed": "⚠️ transcription failed; see the bot's log",
        "progress": "🎙 {percent}%…",
        "private_header": "🎙 {who}",
        "moved": "🔒 the transcript went to the owner's private chat",
        "gone": "⚠️ the recording was deleted before it could be transcribed",
        "undeliverable": "⚠️ the transcript could not be delivered ({reason})",
        "gave_up": "⚠️ gave up on this recording after {attempts} attempts; see the bot's log",
        "view_once": "🔒 view-once recording: the transcript is in your Saved Messages",
        "sent_to_saved": "🔒 the answer is in your Saved Messages",
        "not_media": "⚠️ reply with {prefix}t to a voice message, video note, audio or video",
        "no_reply": "⚠️ reply to a voice message with {prefix}{command}",
        "auto_on": "✅ automatic transcription is on in this chat",
        "auto_off": "⏸ automatic transcription is off in this chat; {prefix}t still works",
        "auto_default": "↩️ this chat follows the global settings again",
        "lang_set": "🌐 language for this chat: {language}",
        "lang_auto": "🌐 language for this chat: auto-detect",
        "bad_lang": "⚠️ not a language code: {language} (examples: en, ru, uk, de, auto)",
        "langs_set": "🌐 languages for this chat: {languages} (the most probable of them is used)",
        "vocab_list": "📖 vocabulary of this chat: {terms}",
        "vocab_empty": "📖 this chat has no vocabulary of its own (add names: {prefix}vocab add NAME…)",
        "vocab_added": "📖 added; vocabulary of this chat: {terms}",
        "vocab_removed": "📖 removed; vocabulary of this chat: {terms}",
        "usage": "⚠️ usage: {usage}",
        "endpoint": "• {name}: {state} ({done} done, {failed} failed{detail})",
        "status": (
            "📊 queue: {waiting} waiting, {running} running\n"
            "model: {model} on {device}\nuptime: {uptime}\njobs done: {done}, failed: {failed}\n"
            "average real-time factor: {rtf}\ncached transcripts: {cached}"
        ),
        "find_none": "🔎 nothing found for “{query}”",
        "find_header": "🔎 {count} result(s) for “{query}”:",
        "no_srt": "⚠️ no timestamps for this recording yet: transcribe it first with {prefix}t",
        "summary_title": "📝 Summary:",
        "translation_title": "🌐 Translation ({language}):",
        "no_llm": "⚠️ no LLM is configured (LLM_URL): summaries and translations need one",
        "llm_failed": "⚠️ the LLM did not answer; the transcript is unchanged (see the bot's log)",
        "no_transcript": "⚠️ not transcribed yet: first {prefix}t, then {prefix}{command}",
        "tr_auto": "🌐 every transcript in this chat is translated into {language}",
        "tr_off": "🌐 no automatic translation in this chat",
        "help": (
            "🎙 voicebot commands (yours only):\n"
            "{prefix}t — reply to a voice/video note/audio/video: transcribe it now\n"
            "{prefix}srt — reply to a transcribed voice: subtitles with timestamps\n"
            "{prefix}auto on|off|default — automatic transcription in this chat\n"
            "{prefix}lang CODE|CODES|auto — language of this chat ({prefix}lang uk), or a set ({prefix}lang ru,en)\n"
            "{prefix}vocab add WORDS|remove WORDS|list — names and terms to hear right in this chat\n"
            "{prefix}sum — reply to a voice or its transcript: a summary (needs LLM_URL)\n"
            "{prefix}tr CODE|auto CODE|off — translate it ({prefix}tr de), or every voice in this chat\n"
            "{prefix}find WORDS — search past transcripts (and their summaries, translations)\n"
            "{prefix}status — queue, model, uptime, speed\n"
            "{prefix}help — this list"
        ),
        "help_reaction": (
            "{reaction} reaction (yours) on a voice/video note/audio/video: transcribe it, once; where a chat "
            "does not offer {reaction} (its reactions are restricted), or in Saved Messages without Premium, "
            "use {prefix}t"
        ),
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
        "disk": "⚠️ боту некуда сохранить запись (диск заполнен или только для чтения)",
        "failed": "⚠️ ошибка расшифровки; подробности в журнале бота",
        "progress": "🎙 {percent}%…",
        "private_header": "🎙 {who}",
        "moved": "🔒 расшифровка ушла в личный чат владельца",
        "gone": "⚠️ запись удалили раньше, чем её удалось расшифровать",
        "undeliverable": "⚠️ расшифровку не удалось доставить ({reason})",
        "gave_up": "⚠️ после {attempts} попыток эта запись пропущена; подробности в журнале бота",
        "view_once": "🔒 одноразовая запись: расшифровка в «Избранном»",
        "sent_to_saved": "🔒 ответ в «Избранном»",
        "not_media": "⚠️ ответьте {prefix}t на голосовое, кружок, аудио или видео",
        "no_reply": "⚠️ ответьте {prefix}{command} на голосовое сообщение",
        "auto_on": "✅ автоматическая расшифровка в этом чате включена",
        "auto_off": "⏸ автоматическая расшифровка в этом чате выключена; {prefix}t работает",
        "auto_default": "↩️ этот чат снова следует общим настройкам",
        "lang_set": "🌐 язык этого чата: {language}",
        "lang_auto": "🌐 язык этого чата: определять автоматически",
        "bad_lang": "⚠️ это не код языка: {language} (например: en, ru, uk, de, auto)",
        "langs_set": "🌐 языки этого чата: {languages} (берётся самый вероятный из них)",
        "vocab_list": "📖 словарь этого чата: {terms}",
        "vocab_empty": "📖 у этого чата нет своего словаря (добавить имена: {prefix}vocab add ИМЯ…)",
        "vocab_added": "📖 добавлено; словарь этого чата: {terms}",
        "vocab_removed": "📖 удалено; словарь этого чата: {terms}",
        "usage": "⚠️ использование: {usage}",
        "endpoint": "• {name}: {state} (готово {done}, ошибок {failed}{detail})",
        "status": (
            "📊 очередь: ждут {waiting}, в работе {running}\n"
            "модель: {model} на {device}\nработает: {uptime}\nготово: {done}, ошибок: {failed}\n"
            "средний коэффициент реального времени: {rtf}\nв кэше расшифровок: {cached}"
        ),
        "find_none": "🔎 ничего не найдено по запросу «{query}»",
        "find_header": "🔎 найдено {count} по запросу «{query}»:",
        "no_srt": "⚠️ для этой записи ещё нет меток времени: сначала {prefix}t",
        "summary_title": "📝 Кратко:",
        "translation_title": "🌐 Перевод ({language}):",
        "no_llm": "⚠️ LLM не настроена (LLM_URL): для кратких пересказов и переводов она нужна",
        "llm_failed": "⚠️ LLM не ответила; расшифровка не изменилась (подробности в журнале бота)",
        "no_transcript": "⚠️ эта запись ещё не расшифрована: сначала {prefix}t, потом {prefix}{command}",
        "tr_auto": "🌐 все расшифровки в этом чате переводятся на {language}",
        "tr_off": "🌐 автоматического перевода в этом чате нет",
        "help": (
            "🎙 команды voicebot (только ваши):\n"
            "{prefix}t — ответом на голосовое/кружок/аудио/видео: расшифровать сейчас\n"
            "{prefix}srt — ответом на расшифрованное голосовое: субтитры с метками времени\n"
            "{prefix}auto on|off|default — автоматическая расшифровка в этом чате\n"
            "{prefix}lang КОД|КОДЫ|auto — язык этого чата ({prefix}lang uk) или набор ({prefix}lang ru,en)\n"
            "{prefix}vocab add СЛОВА|remove СЛОВА|list — имена и термины, которые в этом чате надо слышать верно\n"
            "{prefix}sum — ответом на голосовое или его расшифровку: краткий пересказ (нужен LLM_URL)\n"
            "{prefix}tr КОД|auto КОД|off — перевести ({prefix}tr de) или переводить всё в этом чате\n"
            "{prefix}find СЛОВА — поиск по прошлым расшифровкам (и их пересказам, переводам)\n"
            "{prefix}status — очередь, модель, время работы, скорость\n"
            "{prefix}help — этот список"
        ),
        "help_reaction": (
            "ваша реакция {reaction} на голосовое/кружок/аудио/видео: расшифровать его, один раз; где чат "
            "не предлагает {reaction} (реакции ограничены) или в «Избранном» без Premium — {prefix}t"
        ),
    },
}


def say(key: str, ui_language: str = "en", /, **values: object) -> str:
    """The bot's own message ``key`` in ``ui_language`` (en, ru), HTML-escaped, ready to send.

    Example::

        say("too_big", "en", size_mb=80, limit_mb=50)  # '⚠️ this file is 80 MB; the limit is 50 MB'
    """
    template = _TEXTS.get(ui_language, _TEXTS["en"])[key]
    safe = {name: escape(value) if isinstance(value, str) else value for name, value in values.items()}
    return escape(template).format(**safe)


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


def to_srt(segments: list[tuple[float, float, str]]) -> str:
    """SubRip subtitles from ``(start, end, text)`` segments.

    Example::

        to_srt([(0.0, 1.5, "Hello")])  # '1\n00:00:00,000 --> 00:00:01,500\nHello\n'
    """
    blocks = []
    for number, (start, end, text) in enumerate(segments, 1):
        blocks.append(f"{number}\n{_srt_time(start)} --> {_srt_time(end)}\n{text.strip()}\n")
    return "\n".join(blocks)


def _srt_time(seconds: float) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def duration_text(seconds: float) -> str:
    """``3h 05m``, ``12m 03s`` or ``42s``: uptime and lengths for people."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
