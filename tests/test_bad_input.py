"""Everything a sender can throw at the bot: each gets a clear reply, the next voice still works,
and temp/ is empty afterwards. docs/reliability.md lists these cases with their outcomes."""

import struct
import subprocess
import tracemalloc

import pytest

from voicebot import audio
from voicebot.config import load_settings
from voicebot.core.pipeline import Pipeline
from voicebot.formatting import say
from voicebot.messages import ChatKind, IncomingMessage, Media, MediaKind
from voicebot.state import State
from voicebot.storage import TempDir

from .helpers import FIXTURES, OWNER_ID, MemoryChat, dispatch


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Inputs too big or too odd to commit, made from the committed fixtures."""
    d = tmp_path_factory.mktemp("bad")
    ffmpeg("-i", FIXTURES / "hello.ogg", "-t", "0.1", "-c:a", "libopus", d / "tenth.ogg")
    # Two hours: 136 copies of the 53 s paragraph, stream-copied (seconds, not minutes, to make).
    (d / "list.txt").write_text("".join(f"file '{FIXTURES / 'long.ogg'}'\n" for _ in range(136)))
    ffmpeg("-f", "concat", "-safe", "0", "-i", d / "list.txt", "-c", "copy", d / "two_hours.ogg")
    # A WAV whose format tag names no codec at all.
    pcm = bytes(3200)
    fmt = struct.pack("<HHIIHH", 0x7A7A, 1, 16000, 32000, 2, 16)
    (d / "unknown_codec.wav").write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    video = (FIXTURES / "video_note.mp4").read_bytes()
    (d / "corrupt_video_note.mp4").write_bytes(video[: len(video) // 3])  # the download broke off
    return d


# case → (file, media kind, extra settings, what the reply must be)
CASES = {
    "empty file": ("empty.ogg", MediaKind.VOICE, {}, "unreadable"),
    "truncated OGG": ("truncated.ogg", MediaKind.VOICE, {}, "unreadable"),
    "random bytes": ("random.ogg", MediaKind.VOICE, {}, "unreadable"),
    "text named .ogg": ("text.ogg", MediaKind.VOICE, {}, "unreadable"),
    "MP3 named .ogg": ("mp3_named.ogg", MediaKind.VOICE, {}, "transcript"),
    "pure silence": ("silence.ogg", MediaKind.VOICE, {}, "no_speech"),
    "noise": ("noise.ogg", MediaKind.VOICE, {}, "no_speech"),
    "a 0.1 s voice": ("@tenth.ogg", MediaKind.VOICE, {}, "no_speech"),
    "a 2-hour voice": ("@two_hours.ogg", MediaKind.VOICE, {}, "too_long"),
    "unknown codec": ("@unknown_codec.wav", MediaKind.AUDIO, {"TRANSCRIBE_AUDIO": "1"}, "unreadable"),
    "video without audio": ("no_audio.mp4", MediaKind.VIDEO_NOTE, {}, "unreadable"),
    # What decodes cleanly is kept, as Telegram's own player plays a broken-off file.
    "corrupted video note": ("@corrupt_video_note.mp4", MediaKind.VIDEO_NOTE, {}, "partial"),
    "document claiming audio": ("text.ogg", MediaKind.AUDIO, {"TRANSCRIBE_AUDIO": "1"}, "unreadable"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input(case, made, engine, tmp_path):
    name, kind, env, expected = CASES[case]
    path = made / name[1:] if name.startswith("@") else FIXTURES / name
    s = load_settings(
        {"API_ID": "1", "API_HASH": "0" * 32, "TEMP_DIR": str(tmp_path / "temp"), **env}, dotenv_path=None
    )
    chat = MemoryChat({1: path, 2: FIXTURES / "hello.ogg"})
    temp = TempDir(s.temp_dir)
    temp.prepare()
    pipeline = Pipeline(s, engine, chat, temp, State(tmp_path / "state.db"), owner_id=OWNER_ID)
    pipeline.start()
    for message_id, media_kind in ((1, kind), (2, MediaKind.VOICE)):
        await dispatch(pipeline).on_message(
            IncomingMessage(
                chat_id=42,
                message_id=message_id,
                chat_kind=ChatKind.PRIVATE,
                sender_id=42,
                outgoing=False,
                media=Media(media_kind, size=path.stat().st_size, duration=3, document_id=message_id),
            )
        )
    await pipeline.drain()
    await pipeline.stop()
    (reply,) = chat.texts_for(1)
    if expected == "transcript":
        assert "hello" in reply.lower()
    elif expected == "no_speech":
        assert reply == say("no_speech")
    elif expected == "partial":
        assert reply and not reply.startswith("🎙") and not reply.startswith(say("failed"))
    elif expected == "too_long":
        assert reply.startswith("⚠️") and "120 min" in reply and "limit is 60 min" in reply
    else:
        assert reply.startswith(say("unreadable", reason="")), reply
    assert "hello" in chat.texts_for(2)[0].lower()  # the bot kept serving
    assert list(s.temp_dir.iterdir()) == []


def test_over_the_size_cap_is_refused_before_download(engine, tmp_path):
    from voicebot.core.selection import Action, decide

    s = load_settings({"API_ID": "1", "API_HASH": "0" * 32, "MAX_FILE_MB": "20"}, dotenv_path=None)
    msg = IncomingMessage(
        chat_id=42,
        message_id=1,
        chat_kind=ChatKind.PRIVATE,
        sender_id=42,
        outgoing=False,
        media=Media(MediaKind.VOICE, size=2 * 1024**3, duration=30),
    )
    decision = decide(msg, s)
    assert decision.action is Action.REFUSE and decision.reason == "too_big"


def test_decoding_a_long_recording_stays_within_its_output_size(made):
    """Peak memory ≈ the float32 output itself, not several copies of it."""
    path = made / "long_x12.ogg"
    parts = "|".join([str(FIXTURES / "long.ogg")] * 12)  # about 10.6 minutes
    ffmpeg("-i", f"concat:{parts}", "-c", "copy", path)
    tracemalloc.start()
    samples = audio.decode(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(samples) / audio.SAMPLE_RATE > 600
    assert peak < 1.3 * samples.nbytes, f"peak {peak / 2**20:.0f} MiB for {samples.nbytes / 2**20:.0f} MiB"
