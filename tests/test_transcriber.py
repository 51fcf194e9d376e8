import shutil
from pathlib import Path

import numpy as np
import pytest

from voicebot import audio
from voicebot.errors import ModelError
from voicebot.transcriber import FasterWhisperTranscriber, Transcription, resolve_model

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
    from voicebot import transcriber

    real_load = transcriber._load
    tried = []

    def load(path, device, *args):
        tried.append(device)
        if device == "cuda":
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
        return real_load(path, device, *args)

    monkeypatch.setattr(transcriber, "_load", load)
    engine = FasterWhisperTranscriber.load(model_path, cache_dir=tmp_path, device="cuda")
    assert tried == ["cuda", "cpu"]
    assert engine.device == "cpu"
    assert engine.transcribe(np.zeros(16000, dtype=np.float32)).no_speech


@pytest.mark.parametrize("detected, probability, pinned, expected", [
    ("ru", 0.55, "uk", "uk"),  # unsure, confusable: the chat's language
    ("ru", 0.95, "uk", "ru"),  # sure: keep what was heard
    ("en", 0.40, "uk", "en"),  # unsure but not confusable with Ukrainian
    ("pt", 0.60, "es", "es"),
    ("es", 0.60, None, "es"),  # nothing pinned
])
def test_choose_language(detected, probability, pinned, expected):
    from voicebot.transcriber import choose_language

    assert choose_language(detected, probability, pinned) == expected


def test_silero_detector_streams_faster_whispers_own_probabilities():
    """Fed block by block, the detector gives exactly what faster-whisper's VAD computes at once."""
    from faster_whisper.vad import get_vad_model

    from voicebot.chunking import FRAME
    from voicebot.transcriber import silero_detector

    samples = audio.decode(FIXTURES / "long.ogg")
    samples = np.pad(samples, (0, -len(samples) % FRAME))
    whole = get_vad_model()(samples).reshape(-1)
    detector = silero_detector()
    streamed = np.concatenate([detector(samples[i:i + 37 * FRAME]) for i in range(0, len(samples), 37 * FRAME)])
    np.testing.assert_array_equal(streamed, whole)
    assert (whole > 0.5).mean() > 0.5  # it is speech, mostly
