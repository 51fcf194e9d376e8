"""What crosses the wire to a speech server, the same for every protocol: 16-bit PCM out,
a :class:`Heard` back, languages as Whisper's codes.

Example::

    pcm16(samples)            # bytes for the request body
    language_code("English")  # 'en'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voicebot.engine.base import Segment


@dataclass(frozen=True)
class Heard:
    """What a server returned for one chunk. Times are from the chunk's start;
    ``language_probability`` is ``None`` when the server does not say."""

    language: str | None
    language_probability: float | None
    segments: tuple[Segment, ...]


def pcm16(samples: np.ndarray) -> bytes:
    """float32 in [-1, 1] → little-endian 16-bit PCM, what both protocols carry."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def language_code(value: str | None) -> str | None:
    """A server's language as a Whisper code: OpenAI says ``english``, others say ``en``.

    Example::

        language_code("English")   # 'en'
        language_code("uk")        # 'uk'
    """
    if not value:
        return None
    value = value.strip().lower()
    return _CODES.get(value, value)


# Whisper's language names (openai/whisper tokenizer.py LANGUAGES), name → code.
_CODES = {
    name: code
    for code, name in (
        pair.split(":")
        for pair in (
            "en:english de:german es:spanish ru:russian ko:korean fr:french ja:japanese pt:portuguese tr:turkish "
            "pl:polish ca:catalan nl:dutch ar:arabic sv:swedish it:italian id:indonesian hi:hindi fi:finnish "
            "vi:vietnamese he:hebrew uk:ukrainian el:greek ms:malay cs:czech ro:romanian da:danish hu:hungarian "
            "ta:tamil no:norwegian th:thai ur:urdu hr:croatian bg:bulgarian lt:lithuanian la:latin mi:maori "
            "ml:malayalam cy:welsh sk:slovak te:telugu fa:persian lv:latvian bn:bengali sr:serbian az:azerbaijani "
            "sl:slovenian kn:kannada et:estonian mk:macedonian br:breton eu:basque is:icelandic hy:armenian "
            "ne:nepali mn:mongolian bs:bosnian kk:kazakh sq:albanian sw:swahili gl:galician mr:marathi pa:punjabi "
            "si:sinhala km:khmer sn:shona yo:yoruba so:somali af:afrikaans oc:occitan ka:georgian be:belarusian "
            "tg:tajik sd:sindhi gu:gujarati am:amharic yi:yiddish lo:lao uz:uzbek fo:faroese ht:haitian_creole "
            "ps:pashto tk:turkmen nn:nynorsk mt:maltese sa:sanskrit lb:luxembourgish my:myanmar bo:tibetan "
            "tl:tagalog mg:malagasy as:assamese tt:tatar haw:hawaiian ln:lingala ha:hausa ba:bashkir jw:javanese "
            "su:sundanese yue:cantonese"
        ).split()
    )
}
_CODES.update({name.replace("_", " "): code for name, code in list(_CODES.items()) if "_" in name})
