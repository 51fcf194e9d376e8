import numpy as np
import pytest

from voicebot.audio import decoding as audio
from voicebot.errors import AudioError

from .helpers import FIXTURES


@pytest.mark.parametrize(
    "name, codec, seconds",
    [
        ("hello.ogg", "opus", 5.19),
        ("video_note.mp4", "aac", 4.67),
        ("speech.mp3", "mp3", 5.25),
    ],
)
def test_probe_and_decode_speech(name, codec, seconds):
    info = audio.probe(FIXTURES / name)
    assert info.codec == codec
    assert info.duration == pytest.approx(seconds, abs=0.1)
    samples = audio.decode(FIXTURES / name)
    assert samples.dtype == np.float32
    assert len(samples) / audio.SAMPLE_RATE == pytest.approx(info.duration, abs=0.2)
    assert 0.05 < np.abs(samples).max() <= 1.0  # real signal, normalised


def test_mp3_named_ogg_is_decoded_by_content():
    assert audio.probe(FIXTURES / "mp3_named.ogg").codec == "mp3"
    assert len(audio.decode(FIXTURES / "mp3_named.ogg")) > audio.SAMPLE_RATE


def test_silence_decodes_to_zeros():
    samples = audio.decode(FIXTURES / "silence.ogg")
    assert len(samples) == pytest.approx(3 * audio.SAMPLE_RATE, rel=0.05)
    assert np.abs(samples).max() < 1e-3


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty.ogg", "empty"),
        ("random.ogg", "not"),
        ("text.ogg", "not"),
        ("no_audio.mp4", "no audio track"),
        ("missing.ogg", "does not exist"),
    ],
)
def test_bad_inputs_raise_audio_error(name, message):
    with pytest.raises(AudioError, match=message):
        audio.probe(FIXTURES / name)
    with pytest.raises(AudioError):
        audio.decode(FIXTURES / name)


def test_truncated_file_is_refused_or_yields_only_what_is_there():
    try:
        samples = audio.decode(FIXTURES / "truncated.ogg")
    except AudioError as exc:
        assert "truncated" in str(exc) or "not" in str(exc)
    else:
        assert len(samples) < audio.SAMPLE_RATE  # a sliver at most, never invented audio


def test_ffmpeg_fallback_gives_the_same_audio(monkeypatch):
    direct = audio.decode(FIXTURES / "hello.ogg")

    def broken(path):
        raise ValueError("PyAV cannot decode this")

    monkeypatch.setattr(audio, "_decode_pyav", broken)
    fallback = audio.decode(FIXTURES / "hello.ogg")
    assert abs(len(fallback) - len(direct)) < audio.SAMPLE_RATE // 10
    with pytest.raises(AudioError):
        audio.decode(FIXTURES / "random.ogg")


def test_recording_streams_the_same_samples_in_blocks(tmp_path):
    import shutil

    whole = audio.decode(FIXTURES / "long.ogg")
    copy = tmp_path / "voice.ogg"
    shutil.copyfile(FIXTURES / "long.ogg", copy)
    recording = audio.open_recording(copy, max_duration_s=3600)
    copy.unlink()  # as the pipeline's temp file is, before the transcription: the open file lives on
    assert recording.duration == pytest.approx(53.1, abs=0.1)  # the container's figure, before decoding
    blocks = list(recording)
    assert len(blocks) >= 5 and all(len(b) <= 11 * audio.SAMPLE_RATE for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    assert recording.duration == len(whole) / audio.SAMPLE_RATE  # exact once decoded
    with pytest.raises(RuntimeError, match="once"):
        iter(recording)


def test_recording_refuses_what_decode_refuses_before_any_block(monkeypatch):
    from voicebot.errors import TooLongError

    for name in ("empty.ogg", "random.ogg", "text.ogg", "no_audio.mp4", "truncated.ogg"):
        try:
            recording = audio.open_recording(FIXTURES / name)
        except AudioError:
            continue
        assert name == "truncated.ogg" and sum(map(len, recording)) < audio.SAMPLE_RATE  # a sliver at most
    with pytest.raises(TooLongError) as caught:
        audio.open_recording(FIXTURES / "long.ogg", max_duration_s=30)
    assert caught.value.args[0] == pytest.approx(53.1, abs=0.1)
    # A container without a duration is cut off while decoding, once past the cap.
    monkeypatch.setattr(audio, "probe", lambda path: audio.Probe(duration=None, codec="opus", container="ogg"))
    recording = audio.open_recording(FIXTURES / "long.ogg", max_duration_s=30)
    with pytest.raises(TooLongError):
        for _ in recording:
            pass


def test_recording_falls_back_to_ffmpeg(monkeypatch):
    direct = audio.decode(FIXTURES / "hello.ogg")

    def broken(path, reserve=None):
        raise ValueError("PyAV cannot decode this")
        yield

    monkeypatch.setattr(audio, "_pyav_blocks", broken)
    streamed = np.concatenate(list(audio.open_recording(FIXTURES / "hello.ogg")))
    assert abs(len(streamed) - len(direct)) < audio.SAMPLE_RATE // 10


@pytest.mark.filterwarnings("ignore:Couldn't find ff:RuntimeWarning")  # pydub's, on an empty PATH
def test_without_ffmpeg_programs_what_pyav_refuses_is_a_clear_audio_error(monkeypatch, tmp_path):
    """The default image has no ffmpeg/ffprobe (PyAV reads every input Telegram clients
    send): a file PyAV refuses must still end in AudioError, never FileNotFoundError."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg, no ffprobe on it

    def broken(*args, **kwargs):
        raise ValueError("PyAV has no decoder for this codec")

    monkeypatch.setattr(audio, "_decode_pyav", broken)
    with pytest.raises(AudioError, match="PyAV cannot decode"):
        audio.decode(FIXTURES / "hello.ogg")
    with pytest.raises(AudioError, match="PyAV can open"):
        audio._probe_ffprobe(FIXTURES / "hello.ogg")
