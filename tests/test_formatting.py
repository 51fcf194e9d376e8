import html

import pytest

from voicebot.formatting import MESSAGE_LIMIT, escape, say, split_transcript, utf16_len


def unpack(parts):
    """Text of the parts without counters, unescaped."""
    texts = [p.split(" ", 1)[1] if len(parts) > 1 else p for p in parts]
    return [html.unescape(t) for t in texts]


def test_short_text_is_one_escaped_message():
    assert split_transcript("a <b> & c") == ["a &lt;b&gt; &amp; c"]


def test_empty_text_gives_no_messages():
    assert split_transcript("   ") == []


def test_long_text_splits_at_sentences_and_keeps_every_word():
    sentence = "This is sentence number {} and it has a few <tags> & ampersands. "
    text = "".join(sentence.format(i) for i in range(400))
    parts = split_transcript(text)
    assert len(parts) > 1
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(unpack(parts)) == " ".join(text.split())
    assert all(t.endswith(".") for t in unpack(parts))  # sentence boundaries were used
    assert parts[0].startswith(f"(1/{len(parts)}) ")


def test_sentence_longer_than_a_message_splits_at_words():
    text = " ".join(["word"] * 3000)  # one 15 000 character sentence
    parts = split_transcript(text)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(unpack(parts)) == text
    assert all(not t.startswith("ord") for t in unpack(parts))


def test_word_longer_than_a_message_is_cut_without_loss():
    text = "x" * 10_000
    parts = split_transcript(text)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(unpack(parts)) == text


def test_limit_counts_utf16_and_escapes():
    text = "😀<" * 3000  # 2 UTF-16 units + 4 after escaping each
    parts = split_transcript(text)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(unpack(parts)) == text


@pytest.mark.parametrize("limit", [30, 100])
def test_small_limits(limit):
    text = "One two three. Four five six seven! Eight nine ten?"
    parts = split_transcript(text, limit=limit)
    assert all(utf16_len(p) <= limit for p in parts)
    assert " ".join(unpack(parts)) == text


def test_bot_words_exist_in_both_languages():
    assert say("no_speech", "en") != say("no_speech", "ru")
    assert "50" in say("too_big", "ru", size_mb=80, limit_mb=50)
    assert escape("<i>") == "&lt;i&gt;"
