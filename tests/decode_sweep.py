"""Which inputs decode through PyAV's bundled FFmpeg, and which only through an ffmpeg binary?

Two steps, because the inputs are made with the host's full Debian ffmpeg (every encoder)
and decoded where the question is asked (inside the built image, see tests/test_image.py):

    python3 tests/decode_sweep.py make DIR          # ~40 files: Telegram voices, audio, video
    python3 -m tests.decode_sweep decode DIR        # JSON: per file, what each path decoded

``decode`` runs the app's own code paths (voicebot.audio): ``pyav`` is the in-process
decode, ``binary`` the pydub + ffmpeg/ffprobe fallback with whatever ``ffmpeg`` is on PATH,
``app`` what ``read_audio`` (probe, cap, decode) makes of the file. Results in docs/docker.md.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEECH = FIXTURES / "hello.ogg"  # 5.2 s of speech; every made file carries it

# name → (what sends it, ffmpeg output arguments). "lavfi" video: a 2 s test pattern.
AUDIO_ONLY = {
    # What Telegram's own clients send (core.telegram.org/api/files: voice notes are
    # OGG/Opus, video notes MP4 H.264/AAC) and what people attach as audio files.
    "voice_opus.ogg": ("Telegram voice note", ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000"]),
    "voice_vorbis.ogg": ("third-party client voice", ["-c:a", "libvorbis"]),
    "voice_speex.spx": ("old client voice (Speex in OGG)", ["-c:a", "libspeex", "-ar", "16000"]),
    "opus.webm": ("browser recording (MediaRecorder)", ["-c:a", "libopus"]),
    "opus.mka": ("Matroska audio", ["-c:a", "libopus"]),
    "audio.mp3": ("audio file", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "audio_aac.m4a": ("iPhone voice memo / audio file", ["-c:a", "aac", "-b:a", "64k"]),
    "audio_adts.aac": ("raw AAC (ADTS)", ["-c:a", "aac", "-f", "adts"]),
    "audio_alac.m4a": ("Apple lossless", ["-c:a", "alac"]),
    "audio.flac": ("lossless", ["-c:a", "flac"]),
    "pcm_s16.wav": ("WAV 16-bit", ["-c:a", "pcm_s16le"]),
    "pcm_s24.wav": ("WAV 24-bit", ["-c:a", "pcm_s24le"]),
    "pcm_f32.wav": ("WAV float", ["-c:a", "pcm_f32le"]),
    "mulaw.wav": ("WAV G.711 mu-law (telephony)", ["-c:a", "pcm_mulaw", "-ar", "8000"]),
    "alaw.wav": ("WAV G.711 A-law (telephony)", ["-c:a", "pcm_alaw", "-ar", "8000"]),
    "adpcm_ms.wav": ("WAV MS ADPCM (dictaphones)", ["-c:a", "adpcm_ms"]),
    "adpcm_ima.wav": ("WAV IMA ADPCM (dictaphones)", ["-c:a", "adpcm_ima_wav"]),
    "gsm_ms.wav": ("WAV GSM 6.10", ["-c:a", "libgsm_ms", "-ar", "8000"]),
    "g722.wav": ("WAV G.722 (VoIP)", ["-c:a", "g722", "-ar", "16000"]),
    "audio.au": ("Sun AU", ["-c:a", "pcm_mulaw", "-ar", "8000"]),
    "audio.aiff": ("AIFF (macOS)", ["-c:a", "pcm_s16be"]),
    "alac.caf": ("CAF (iOS)", ["-c:a", "alac"]),
    "audio.wma": ("Windows Media Audio 2", ["-c:a", "wmav2", "-b:a", "64k"]),
    "audio.ac3": ("AC-3", ["-c:a", "ac3"]),
    "audio.eac3": ("E-AC-3", ["-c:a", "eac3"]),
    "audio.mp2": ("MPEG-1 Layer II", ["-c:a", "mp2"]),
    "audio.wv": ("WavPack", ["-c:a", "wavpack"]),
    "audio.tta": ("True Audio", ["-c:a", "tta"]),
    "audio.dts": ("DTS", ["-c:a", "dca", "-strict", "-2", "-ar", "48000"]),
    "nellymoser.flv": ("Flash voice (Nellymoser)", ["-c:a", "nellymoser", "-ar", "22050"]),
    "real144.ra": ("RealAudio 1.0", ["-c:a", "real_144", "-ar", "8000"]),
    "codec2.c2": ("Codec 2 (ham radio; no Telegram client)", ["-c:a", "libcodec2", "-ar", "8000", "-mode", "1300"]),
}
WITH_VIDEO = {
    "video_note_h264_aac.mp4": ("Telegram video note", ["-c:v", "libx264", "-s", "240x240", "-c:a", "aac"]),
    "video_h264_aac.mp4": ("phone video", ["-c:v", "libx264", "-c:a", "aac"]),
    "video_hevc_aac.mov": ("iPhone video (HEVC)", ["-c:v", "libx265", "-tag:v", "hvc1", "-c:a", "aac"]),
    "video_av1_opus.mp4": ("Android video (AV1)", ["-c:v", "libsvtav1", "-c:a", "libopus"]),
    "video_vp9_opus.webm": ("WebM VP9 + Opus", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"]),
    "video_vp8_vorbis.webm": ("WebM VP8 + Vorbis", ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"]),
    "video_mpeg4_mp3.avi": ("AVI MPEG-4 + MP3", ["-c:v", "mpeg4", "-c:a", "libmp3lame"]),
    "video_h264_aac.ts": ("MPEG-TS", ["-c:v", "libx264", "-c:a", "aac"]),
    "video_h263_aac.3gp": ("3GP (old phones)", ["-c:v", "h263", "-s", "176x144", "-c:a", "aac", "-ar", "16000"]),
    "video_mpeg2_mp2.mpg": ("MPEG-2 program stream", ["-c:v", "mpeg2video", "-c:a", "mp2"]),
    "video_pcm.mov": ("QuickTime PCM", ["-c:v", "mjpeg", "-c:a", "pcm_s16le"]),
    "video_theora_vorbis.ogv": ("Ogg Theora + Vorbis", ["-c:v", "libtheora", "-c:a", "libvorbis"]),
}
# Made with PyAV (the host's ffmpeg has no AMR encoder): voice memos of old phones.
AMR = {"amr_nb.amr": ("AMR-NB voice memo (old phones)", "amr"), "amr_nb.3gp": ("3GP AMR-NB", "3gp")}


def what(name: str) -> str:
    for table in (AUDIO_ONLY, WITH_VIDEO, AMR):
        if name in table:
            return table[name][0]
    return BAD_INPUTS.get(name, "")


# The bad-input table of tests/test_bad_input.py (committed fixtures and the made ones).
BAD_INPUTS = {
    "hello.ogg": "fixture: voice note",
    "video_note.mp4": "fixture: video note",
    "speech.mp3": "fixture: MP3",
    "mp3_named.ogg": "bad input: MP3 named .ogg",
    "empty.ogg": "bad input: empty file",
    "truncated.ogg": "bad input: truncated OGG",
    "random.ogg": "bad input: random bytes",
    "text.ogg": "bad input: text named .ogg",
    "silence.ogg": "bad input: pure silence",
    "noise.ogg": "bad input: noise",
    "no_audio.mp4": "bad input: video without audio",
    "tenth.ogg": "bad input: a 0.1 s voice",
    "unknown_codec.wav": "bad input: unknown codec",
    "corrupt_video_note.mp4": "bad input: corrupted video note",
}


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


def make(out: Path) -> list[Path]:
    """Write every sweep input (and the bad-input table's files) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, (_, args) in AUDIO_ONLY.items():
        _ffmpeg("-i", SPEECH, "-ac", "1", *args, out / name)
    for name, (_, args) in WITH_VIDEO.items():
        _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=15",
            "-i",
            SPEECH,
            "-shortest",
            "-pix_fmt",
            "yuv420p",
            "-ac",
            "1",
            *args,
            out / name,
        )
    for name, (_, fmt) in AMR.items():
        _encode_amr(out / name, fmt)
    for name in BAD_INPUTS:
        if (FIXTURES / name).exists():
            shutil.copyfile(FIXTURES / name, out / name)
    # The three made by tests/test_bad_input.py, made the same way.
    _ffmpeg("-i", SPEECH, "-t", "0.1", "-c:a", "libopus", out / "tenth.ogg")
    pcm = bytes(3200)
    fmt = struct.pack("<HHIIHH", 0x7A7A, 1, 16000, 32000, 2, 16)
    (out / "unknown_codec.wav").write_bytes(
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
    (out / "corrupt_video_note.mp4").write_bytes(video[: len(video) // 3])
    return sorted(out.iterdir())


def _encode_amr(path: Path, fmt: str) -> None:
    import av

    with av.open(str(SPEECH)) as src, av.open(str(path), "w", format=fmt) as dst:
        stream = dst.add_stream("libopencore_amrnb", rate=8000, layout="mono")
        stream.bit_rate = 12200
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        fifo = av.AudioFifo()
        for frame in src.decode(audio=0):
            frame.pts = None
            for out in resampler.resample(frame):
                fifo.write(out)
            while fifo.samples >= 160:
                for packet in stream.encode(fifo.read(160)):
                    dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def _seconds(fn, path: Path) -> tuple[float | None, str]:
    try:
        samples = fn(path)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:80]}"
    return round(len(samples) / 16000, 2), ""


def decode(directory: Path) -> dict[str, dict]:
    """Per file: seconds of audio each path decoded (None: failed) and the app's verdict."""
    import warnings

    warnings.simplefilter("ignore")  # pydub warns when no ffmpeg is on PATH: that is measured here
    from loguru import logger

    logger.remove()
    from voicebot.audio import decoding as audio
    from voicebot.errors import VoicebotError

    results = {}
    for path in sorted(directory.iterdir()):
        pyav, pyav_error = _seconds(audio._decode_pyav, path)
        binary, binary_error = _seconds(audio._decode_ffmpeg, path)
        try:
            app = f"{sum(len(block) for block in audio.open_recording(path, max_duration_s=3600)) / 16000:.2f} s"
        except VoicebotError as exc:
            app = f"refused: {exc}"
        except Exception as exc:
            app = f"CRASH {type(exc).__name__}: {exc}"
        results[path.name] = {
            "pyav": pyav,
            "binary": binary,
            "app": app,
            "pyav_error": pyav_error,
            "binary_error": binary_error,
        }
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("make", "decode"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "make":
        for path in make(Path(argv[1])):
            print(path.name)
    else:
        print(json.dumps(decode(Path(argv[1])), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
