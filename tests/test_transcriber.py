import shutil
from pathlib import Path

import numpy as np
import pytest

from voicebot import audio
from voicebot.engine import Transcription
from voicebot.engine.local import FasterWhisperTranscriber, resolve_model
from voicebot.errors import ModelError

from .helpers import EXPECTED, FIXTURES, wer


@pytest.mark.parametrize("name", ["hello.ogg", "weather.ogg", "video_note.mp4", "long.ogg"])
def test_speech_is_transcribed(engine, name):
    result = engine.transcribe(audio.decode(FIXTURES / name))
    assert isinstance(result, Transcription)
    assert wer(EXPECTED[name], result.text) <= 0.25, result.text
    assert result.language == "en"
    assert result.duration > 1
    assert result.segments and result.segments[0].start >= 0
    assert result.text == " ".join(s.text for s in result.segments)


@pytest.mark.parametrize("name", ["silence.ogg", "noise.ogg"])
def test_no_speech_gives_empty_text_not_a_hallucination(engine, name):
    result = engine.transcribe(audio.decode(FIXTURES / name))
    assert result.no_speech, result.text
    assert result.text == ""


def test_stream_yields_segments_lazily(engine):
    info, segments = engine.stream(audio.decode(FIXTURES / "long.ogg"))
    assert info.language == "en" and info.duration > 30
    first = next(segments)
    assert first.text and first.end > first.start
    rest = list(segments)
    assert len(rest) >= 1
    assert all(b.start >= a.start for a, b in zip([first, *rest], rest))


def test_english_only_model_ignores_another_language(engine):
    result = engine.transcribe(audio.decode(FIXTURES / "hello.ogg"), language="de")
    assert result.language == "en" and "hello" in result.text.lower()


def test_local_model_directory_is_used_as_is(model_path, tmp_path):
    assert resolve_model(model_path, tmp_path) == model_path
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="model.bin"):
        resolve_model(str(not_a_model), tmp_path)


def test_unknown_model_name_is_refused(tmp_path):
    with pytest.raises(ModelError, match="neither a model directory nor a model name"):
        resolve_model("enormous-v9", tmp_path)


def test_named_model_loads_from_cache_offline(model_path, tmp_path, monkeypatch):
    """A model name resolves from the Hugging Face cache layout with no network at all."""
    snapshot = tmp_path / "models--Systran--faster-whisper-tiny.en" / "snapshots" / "abc123"
    shutil.copytree(model_path, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(resolve_model("tiny.en", tmp_path)) == snapshot
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        resolve_model("base", tmp_path)  # not cached, and downloads are forbidden
    engine = FasterWhisperTranscriber.load("tiny.en", cache_dir=tmp_path, device="cpu")
    assert engine.device == "cpu" and engine.model_name == "tiny.en"
    assert "hello" in engine.transcribe(audio.decode(FIXTURES / "hello.ogg")).text.lower()


def test_cuda_failure_falls_back_to_cpu(model_path, tmp_path, monkeypatch):
    from voicebot.engine.local import models

    real_load = models.load_model
    tried = []

    def load(path, device, *args):
        tried.append(device)
        if device == "cuda":
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
        return real_load(path, device, *args)

    monkeypatch.setattr(models, "load_model", load)
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path, device="cuda")
    assert tried == ["cuda", "cpu"]
    assert engine.device == "cpu"
    assert engine.transcribe(np.zeros(16000, dtype=np.float32)).no_speech


@pytest.mark.parametrize(
    "detected, probability, pinned, expected",
    [
        ("ru", 0.55, "uk", "uk"),  # unsure, confusable: the chat's language
        ("ru", 0.95, "uk", "ru"),  # sure: keep what was heard
        ("en", 0.40, "uk", "en"),  # unsure but not confusable with Ukrainian
        ("pt", 0.60, "es", "es"),
        ("es", 0.60, None, "es"),  # nothing pinned
    ],
)
def test_choose_language(detected, probability, pinned, expected):
    from voicebot.engine import choose_language

    assert choose_language(detected, probability, pinned) == expected


def test_silero_detector_streams_faster_whispers_own_probabilities():
    """Fed block by block, the detector gives exactly what faster-whisper's VAD computes at once."""
    from faster_whisper.vad import get_vad_model

    from voicebot.audio.chunking import FRAME
    from voicebot.engine.local import silero_detector

    samples = audio.decode(FIXTURES / "long.ogg")
    samples = np.pad(samples, (0, -len(samples) % FRAME))
    whole = get_vad_model()(samples).reshape(-1)
    detector = silero_detector()
    streamed = np.concatenate([detector(samples[i : i + 37 * FRAME]) for i in range(0, len(samples), 37 * FRAME)])
    np.testing.assert_array_equal(streamed, whole)
    assert (whole > 0.5).mean() > 0.5  # it is speech, mostly


# -- streaming: decode, VAD and windows as one flow --------------------------------------


def concat(tmp_path, name, parts, pause_s=1.5):
    """An OGG voice made of fixtures with pauses between them; returns its path and its text."""
    import subprocess

    pcm = []
    for part in parts:
        samples = audio.decode(FIXTURES / part) if isinstance(part, str) else np.zeros(int(part * 16_000), np.float32)
        pcm += [samples, np.zeros(int(pause_s * 16_000), np.float32)]
    data = (np.concatenate(pcm) * 32767).astype("<i2").tobytes()
    path = tmp_path / name
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "s16le",
            "-ar",
            "16000",
            "-ac",
            "1",
            "-i",
            "-",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-application",
            "voip",
            str(path),
        ],
        input=data,
        check=True,
    )
    return path, " ".join(EXPECTED[p] for p in parts if isinstance(p, str))


def bare(engine, path, **kwargs):
    """faster-whisper's own transcribe() on the same file: the reference."""
    segments, _ = engine._model.transcribe(
        str(path), beam_size=engine.beam_size, vad_filter=True, condition_on_previous_text=False, **kwargs
    )
    return list(segments)


@pytest.mark.parametrize("name", ["hello.ogg", "weather.ogg", "video_note.mp4", "long.ogg"])
def test_streamed_text_is_as_good_as_bare_faster_whisper(engine, name):
    streamed = engine.transcribe(audio.open_recording(FIXTURES / name))
    reference = " ".join(s.text.strip() for s in bare(engine, FIXTURES / name))
    assert wer(EXPECTED[name], streamed.text) <= wer(EXPECTED[name], reference) + 0.02, streamed.text
    assert streamed.duration == pytest.approx(len(audio.decode(FIXTURES / name)) / audio.SAMPLE_RATE)


def test_segment_times_are_times_in_the_recording(engine, tmp_path):
    """Long silences are left out of what the model hears; the times still point into the voice."""
    path, _ = concat(tmp_path, "gaps.ogg", [20.0, "hello.ogg", 40.0, "weather.ogg"])
    result = engine.transcribe(audio.open_recording(path))
    reference = bare(engine, path)
    hello = next(s for s in result.segments if "hello" in s.text.lower())
    weather = next(s for s in result.segments if "sunny" in s.text.lower())
    # hello.ogg is at 21.5–26.7 s, weather.ogg at 69.7–78.1 s (each with 0.3 s of silence before)
    assert 21.0 <= hello.start < hello.end < 27.5 and 69.5 <= weather.start < weather.end < 78.5
    assert hello.start == pytest.approx(reference[0].start, abs=0.5)
    assert result.segments[-1].end == pytest.approx(reference[-1].end, abs=0.5)
    assert result.duration == pytest.approx(20 + 1.5 + 5.18 + 1.5 + 40 + 1.5 + 8.43 + 1.5, abs=0.1)


def test_long_voice_first_words_come_before_it_is_decoded(engine, tmp_path):
    """Incremental: the first segment exists while most of the file is not even decoded yet."""
    path, text = concat(
        tmp_path, "four.ogg", ["long.ogg", "weather.ogg", "long.ogg", "hello.ogg", "long.ogg", "long.ogg"]
    )
    recording = audio.open_recording(path)
    assert recording.duration > 120  # long enough for the quick first window
    decoded_at_first = []

    def seen(segment):
        if not decoded_at_first:
            decoded_at_first.append(recording.decoded_s)

    result = engine.transcribe(recording, on_segment=seen)
    # The first chunk needs one or two ~10 s blocks; decoding runs ahead by the second chunk
    # (decoded beside the first), two prefetched and the chunker's own (30 s each at most),
    # never the whole voice.
    assert decoded_at_first[0] <= 160
    assert recording.duration > 230 and recording.decoded_s == recording.duration
    assert wer(text, result.text) <= wer(text, " ".join(s.text.strip() for s in bare(engine, path))) + 0.02
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)


def test_shutdown_mid_stream_stops_and_closes_the_file(engine, tmp_path):
    from voicebot.errors import Interrupted

    path, _ = concat(tmp_path, "stop.ogg", ["long.ogg"] * 5)
    recording = audio.open_recording(path)

    def stop(segment):
        raise Interrupted("shutting down")

    with pytest.raises(Interrupted):
        engine.transcribe(recording, on_segment=stop)
    assert recording.decoded_s < recording.duration  # it did not go on decoding
    with pytest.raises(RuntimeError):
        iter(recording)  # used up and closed


def test_without_vad_silence_is_still_no_speech(model_path, tmp_path):
    """VAD off: the whole recording reaches Whisper, and the no-speech guard must hold."""
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path, device="cpu", vad=False)
    assert engine.transcribe(audio.open_recording(FIXTURES / "silence.ogg")).no_speech
    result = engine.transcribe(audio.open_recording(FIXTURES / "long.ogg"))
    assert wer(EXPECTED["long.ogg"], result.text) <= 0.1


def test_batched_decoding_gives_the_same_words(model_path, tmp_path):
    """What CUDA runs by default (WHISPER_BATCH_SIZE): chunks cut in pauses, several at once.
    Here on the CPU, for correctness only (no GPU on this machine)."""
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path, device="cpu", batch_size=4)
    assert engine.batch_size == 4
    path, text = concat(tmp_path, "batch.ogg", ["long.ogg", "weather.ogg", "long.ogg", "hello.ogg", "long.ogg"])
    result = engine.transcribe(audio.open_recording(path))
    assert wer(text, result.text) <= 0.1
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)
    assert result.segments[-1].end <= result.duration + 0.01


def test_speech_said_three_times_is_transcribed_not_dropped_as_a_loop(engine, tmp_path):
    """One voice said three times over (25 s, one window) has a gzip ratio over Whisper's 2.4:
    the whole window used to be dropped as a repetition loop."""
    path, text = concat(tmp_path, "thrice.ogg", ["weather.ogg"] * 3, pause_s=0.5)
    result = engine.transcribe(audio.open_recording(path))
    assert wer(text, result.text) <= 0.1, result.text


def test_windows_decoded_side_by_side_come_out_in_order(engine, tmp_path):
    """Several chunks, two at a time on the CPU: segments in the recording's order, every part heard."""
    assert engine.windows_at_once == 2  # what load() gives on the CPU
    parts = ["hello.ogg", "long.ogg", "weather.ogg", "long.ogg"]
    path, text = concat(tmp_path, "order.ogg", parts)
    result = engine.transcribe(audio.open_recording(path))
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= result.duration + 0.01
    assert wer(text, result.text) <= wer(text, " ".join(s.text.strip() for s in bare(engine, path))) + 0.02


def test_the_no_speech_guard_keeps_confident_speech_when_the_vad_heard_speech(engine):
    keep = engine._kept(0.0, 5.0, " Clear words.", no_speech_prob=0.66, avg_logprob=-0.3, compression_ratio=1.5)
    drop = engine._kept(0.0, 5.0, " Thank you.", no_speech_prob=0.66, avg_logprob=-0.9, compression_ratio=1.0)
    loop = engine._kept(0.0, 5.0, " la la la", no_speech_prob=0.0, avg_logprob=-0.1, compression_ratio=3.0)
    assert keep is not None and keep.text == "Clear words." and drop is None and loop is None


def test_decoded_audio_held_is_bounded_whatever_the_length(tmp_path):
    """Decode, VAD and chunks over a 12 minute voice (the model left out): what is held is a
    few chunks, not the recording."""
    import tracemalloc

    from voicebot.audio.chunking import speech_chunks
    from voicebot.audio.streaming import SpeechStream, prefetched
    from voicebot.engine.local import silero_detector

    path, _ = concat(tmp_path, "twelve.ogg", ["long.ogg", "weather.ogg", "hello.ogg"] * 10)
    tracemalloc.start()
    recording = audio.open_recording(path)
    stream = SpeechStream(prefetched(speech_chunks(recording, detector=silero_detector())))
    seen = sum(1 for _ in stream.chunks())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = recording.duration * audio.SAMPLE_RATE * 4
    assert recording.duration > 700 and seen >= 25
    assert peak < 20 * 2**20 < whole / 2, f"peak {peak / 2**20:.1f} MiB; the recording is {whole / 2**20:.0f} MiB"


def test_hint_phrases_never_cost_a_window_of_speech(model_path, tmp_path):
    """Given the sender's name as hotwords (what every voice gets), tiny.en answered end-of-text
    at once for 4 of the 13 windows of this 5 min voice: 35 % of its words gone. A window the
    VAD heard speech in but the hints silenced is decoded again without them."""
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path / "models", device="cpu", beam_size=1)
    parts, pauses = ["long.ogg", "weather.ogg", "hello.ogg"] * 5, [1.2, 0.6, 2.5] * 5
    pcm = []
    for name, pause in zip(parts, pauses):
        pcm += [audio.decode(FIXTURES / name), np.zeros(int(pause * 16_000), np.float32)]
    path = tmp_path / "five.ogg"
    import subprocess

    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "-",
         "-c:a", "libopus", "-b:a", "32k", "-application", "voip", str(path)],
        input=(np.concatenate(pcm) * 32767).astype("<i2").tobytes(), check=True,
    )  # fmt: skip
    expected = " ".join(EXPECTED[p] for p in parts)
    plain = engine.transcribe(audio.open_recording(path)).text
    hinted = engine.transcribe(audio.open_recording(path), vocabulary=["Alice"]).text
    assert len(hinted.split()) >= 0.95 * len(plain.split()), (len(hinted.split()), len(plain.split()))
    assert wer(expected, hinted) <= wer(expected, plain) + 0.03
