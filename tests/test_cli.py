"""The command line as a user runs it: real processes, exit codes, stdout/stderr."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import EXPECTED, FIXTURES, wer

ROOT = Path(__file__).parent.parent
CREDS = {"API_ID": "12345", "API_HASH": "0123456789abcdef0123456789abcdef"}


def voicebot(*args, env=None, tmp_path=None, entry=("-m", "voicebot"), timeout=300):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "WHISPER_", "DATA_DIR"))}
    if tmp_path is not None:
        clean.update(DATA_DIR=str(tmp_path / "data"), TEMP_DIR=str(tmp_path / "temp"))
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, *entry, "--env-file", "/nonexistent", *args]
        if entry[0] == "-m"
        else [sys.executable, *entry, *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def test_transcribe_prints_the_transcript(model_path):
    done = voicebot("transcribe", str(FIXTURES / "weather.ogg"), "--model", model_path)
    assert done.returncode == 0, done.stderr
    assert wer(EXPECTED["weather.ogg"], done.stdout) <= 0.25
    assert "Traceback" not in done.stderr


def test_transcribe_several_files_and_silence(model_path):
    done = voicebot(
        "transcribe",
        str(FIXTURES / "hello.ogg"),
        str(FIXTURES / "silence.ogg"),
        str(FIXTURES / "video_note.mp4"),
        "--model",
        model_path,
        "--language",
        "en",
    )
    assert done.returncode == 0, done.stderr
    assert "==> " in done.stdout and "hello" in done.stdout.lower() and "video notes" in done.stdout.lower()
    assert "silence.ogg: no speech detected" in done.stderr


def test_silence_alone_gives_empty_stdout(model_path):
    done = voicebot("transcribe", str(FIXTURES / "silence.ogg"), "--model", model_path)
    assert (done.returncode, done.stdout) == (0, "")
    assert "no speech detected" in done.stderr


@pytest.mark.parametrize(
    "name", ["empty.ogg", "truncated.ogg", "random.ogg", "text.ogg", "no_audio.mp4", "missing.ogg"]
)
def test_unreadable_file_exits_1_with_one_line(model_path, name):
    done = voicebot("transcribe", str(FIXTURES / name), "--model", model_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in done.stderr


def test_bad_model_exits_with_one_line(tmp_path):
    done = voicebot("transcribe", str(FIXTURES / "hello.ogg"), "--model", "enormous-v9", tmp_path=tmp_path)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "enormous-v9" in done.stderr


@pytest.mark.parametrize(
    "env, setting",
    [
        ({}, "API_ID"),
        ({"API_ID": "abc", "API_HASH": CREDS["API_HASH"]}, "API_ID"),
        ({**CREDS, "WHISPER_DEVICE": "quantum"}, "WHISPER_DEVICE"),
    ],
)
def test_bad_config_exits_2_naming_the_setting(tmp_path, env, setting):
    done = voicebot("run", env=env, tmp_path=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0] and "Traceback" not in done.stderr


def test_userbot_py_is_the_run_command(tmp_path):
    done = voicebot(env={"API_ID": "x"}, tmp_path=tmp_path, entry=("userbot.py",))
    assert done.returncode == 2 and "API_ID" in done.stderr


def test_run_without_session_and_terminal_exits_instead_of_waiting(tmp_path):
    started = time.monotonic()
    done = voicebot("run", env=CREDS, tmp_path=tmp_path)
    assert done.returncode == 2
    assert "voicebot login" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60  # no model download, no prompt


def test_login_without_terminal_refuses(tmp_path):
    done = voicebot("login", env=CREDS, tmp_path=tmp_path)
    assert done.returncode == 2 and "terminal" in done.stderr


def test_health_follows_the_heartbeat(tmp_path):
    assert voicebot("health", tmp_path=tmp_path).returncode == 1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "heartbeat").write_text(str(time.time()))
    assert voicebot("health", tmp_path=tmp_path).returncode == 0
    (tmp_path / "data" / "heartbeat").write_text(str(time.time() - 600))
    stale = voicebot("health", "--max-age", "120", tmp_path=tmp_path)
    assert stale.returncode == 1 and "last heartbeat" in stale.stderr


def test_doctor_reports_what_is_wrong(tmp_path, model_path):
    done = voicebot("doctor", env={**CREDS, "WHISPER_MODEL": model_path}, tmp_path=tmp_path)
    assert done.returncode == 1  # no session yet
    assert "configuration is valid" in done.stdout
    assert "ffmpeg" in done.stdout and "session" in done.stdout and "voicebot login" in done.stdout
    assert f"model directory {model_path}" in done.stdout
    bad = voicebot("doctor", env={"API_ID": "nope"}, tmp_path=tmp_path)
    assert bad.returncode == 1 and "FAIL configuration: API_ID" in bad.stdout


def test_missing_credentials_are_asked_for_on_a_terminal(tmp_path):
    """On a terminal, `login` asks for API_ID/API_HASH and offers to save them (0600)."""
    import pty
    import select

    env_file = tmp_path / ".env"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "DATA_DIR"))}
    clean.update(DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "voicebot", "--env-file", str(env_file), "login"],
        cwd=ROOT,
        env=clean,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )  # no controlling tty: getpass reads the pty
    os.close(slave)
    seen = b""

    def expect(text: str, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"never saw {text!r}; got {seen.decode(errors='replace')!r}"
            seen += os.read(master, 1024)

    try:
        expect("API_ID: ")
        os.write(master, b"12345\n")
        expect("API_HASH: ")
        os.write(master, CREDS["API_HASH"].encode() + b"\n")
        expect("Save to")
        os.write(master, b"y\n")
        expect("Saved to")
    finally:
        process.kill()
        process.wait()
        os.close(master)
    assert env_file.read_text() == f"API_ID=12345\nAPI_HASH={CREDS['API_HASH']}\n"
    assert env_file.stat().st_mode & 0o777 == 0o600


def _nothing_listens() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_transcribe_gives_up_when_no_server_answers(tmp_path):
    url = f"http://127.0.0.1:{_nothing_listens()}/v1"
    env = {"WHISPER_ENGINE": "openai", "WHISPER_URL": url, "ONESHOT_TIMEOUT_SECONDS": "1"}
    # Before ONESHOT_TIMEOUT_SECONDS it waited for a server forever (the bot's behaviour).
    done = voicebot("transcribe", str(FIXTURES / "hello.ogg"), env=env, tmp_path=tmp_path, timeout=90)
    assert done.returncode == 1, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("voicebot:")]
    assert url.removeprefix("http://") in line and "ONESHOT_TIMEOUT_SECONDS" in line
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_doctor_stops_checking_servers_after_the_oneshot_timeout(tmp_path):
    """Two servers that accept connections and never answer: the first check uses up the
    second's time, and doctor says so instead of waiting 10 s more on each."""
    with socket.socket() as first, socket.socket() as second:
        for silent in (first, second):
            silent.bind(("127.0.0.1", 0))
            silent.listen()
        names = [f"127.0.0.1:{s.getsockname()[1]}/v1" for s in (first, second)]
        env = {**CREDS, "WHISPER_ENGINE": "openai", "ONESHOT_TIMEOUT_SECONDS": "1",
               "WHISPER_URL": ",".join(f"http://{name}" for name in names)}  # fmt: skip
        done = voicebot("doctor", env=env, tmp_path=tmp_path, timeout=90)
    assert done.returncode == 1, done.stdout
    assert f"FAIL {names[0]}: " in done.stdout
    assert f"FAIL {names[1]}: not checked: ONESHOT_TIMEOUT_SECONDS (1 s) ran out" in done.stdout
    assert "Traceback" not in done.stderr
