"""The remote engine against real speech servers on loopback (tests/servers.py): the engine,
the CLI and the running bot over the loopback Telegram, with faults injected by killing
servers or by a proxy in front of a real one."""

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from voicebot import audio
from voicebot.config import load_settings
from voicebot.engine.loader import load_engine
from voicebot.errors import TranscriptionError

from .botharness import Inbox, RunningBot, transcribed
from .helpers import EXPECTED, FIXTURES, wer
from .servers import FaultProxy, SpeechServer, free_port

pytestmark = pytest.mark.remote
ROOT = FIXTURES.parent.parent


def engine_for(kind, *urls, **env):
    # These tests are about answers, not speed: on a machine busy with other work a chunk has
    # taken over the default 60 s (then it is retried, correctly, but counted as failed).
    # The timeout itself has its own test, with its own value.
    env = {"WHISPER_TIMEOUT_SECONDS": "600", **env}
    settings = load_settings(
        {"WHISPER_ENGINE": kind, "WHISPER_URL": ",".join(urls), **env}, dotenv_path=None, require_telegram=False
    )
    return load_engine(settings)


def server_of(kind, request):
    return request.getfixturevalue(f"{kind}_server")


def long_voice(tmp_path, times):
    """``times`` × long.ogg (53 s each) as one Opus file."""
    path = tmp_path / f"long{times}.ogg"
    parts = "|".join([str(FIXTURES / "long.ogg")] * times)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", f"concat:{parts}", "-c", "copy", str(path)], check=True)
    return path


# -- the engine ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "wyoming"])
def test_engine_transcribes_and_keeps_silence_silent(kind, request):
    engine = engine_for(kind, server_of(kind, request).url)
    for name in ("hello.ogg", "weather.ogg", "long.ogg"):
        result = engine.transcribe(audio.decode(FIXTURES / name))
        assert wer(EXPECTED[name], result.text) <= 0.25, (name, result.text)
        assert result.segments and all(b.start >= a.start for a, b in zip(result.segments, result.segments[1:]))
        assert result.segments[-1].end <= result.duration
    for name in ("silence.ogg", "noise.ogg"):  # tiny.en says "You" to silence when it is sent
        assert engine.transcribe(audio.decode(FIXTURES / name)).no_speech, name
    (status,) = engine.endpoints()
    assert status.state == "ok" and status.done >= 4 and status.failed == 0


def test_long_voice_is_split_across_two_servers_in_order(openai_server, second_openai_server, tmp_path):
    samples = audio.decode(long_voice(tmp_path, 3))
    with FaultProxy(openai_server.port) as a, FaultProxy(second_openai_server.port) as b:
        engine = engine_for("openai", a.url, b.url)
        seen = []
        result = engine.transcribe(samples, on_segment=seen.append)
    assert wer(" ".join([EXPECTED["long.ogg"]] * 3), result.text) <= 0.25, result.text
    assert len(a.transcriptions()) >= 2 and len(b.transcriptions()) >= 2  # both servers worked
    assert [s.start for s in seen] == sorted(s.start for s in seen)  # delivered in order
    assert seen[-1].end > 150


def test_one_of_two_endpoints_dead(openai_server):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    engine = engine_for("openai", dead, openai_server.url)
    for name in ("hello.ogg", "weather.ogg", "video_note.mp4"):
        assert wer(EXPECTED[name], engine.transcribe(audio.decode(FIXTURES / name)).text) <= 0.25
    states = {e.name.split(":")[1]: e for e in engine.endpoints()}
    assert states[dead.split(":")[2]].state == "down" and states[dead.split(":")[2]].done == 0
    assert states[str(openai_server.port) + "/v1"].done == 3


def test_server_answering_500_is_retried(openai_server):
    with FaultProxy(openai_server.port, ["500", "500"]) as proxy:
        result = engine_for("openai", proxy.url).transcribe(audio.decode(FIXTURES / "hello.ogg"))
    assert wer(EXPECTED["hello.ogg"], result.text) <= 0.25
    assert [a for _, a in proxy.transcriptions()] == ["500", "500", "pass"]


def test_429_waits_for_retry_after(openai_server):
    with FaultProxy(openai_server.port, ["429:2"]) as proxy:
        result = engine_for("openai", proxy.url).transcribe(audio.decode(FIXTURES / "hello.ogg"))
    assert wer(EXPECTED["hello.ogg"], result.text) <= 0.25
    (first, _), (second, action) = proxy.transcriptions()
    assert action == "pass" and second - first >= 2.0  # not sooner than the server asked


def test_slow_server_past_the_timeout_is_retried(openai_server):
    # The first answer comes only after the client gave up; the retry has 15 s, ample for 5 s
    # of audio on tiny.en even on a busy machine.
    with FaultProxy(openai_server.port, ["hang"]) as proxy:
        engine = engine_for("openai", proxy.url, WHISPER_TIMEOUT_SECONDS="15")
        result = engine.transcribe(audio.decode(FIXTURES / "hello.ogg"))
    assert wer(EXPECTED["hello.ogg"], result.text) <= 0.25
    assert [a for _, a in proxy.transcriptions()] == ["hang", "pass"]


def test_a_refused_request_fails_at_once_with_the_reason(openai_server):
    with FaultProxy(openai_server.port, ["401"]) as proxy, pytest.raises(TranscriptionError, match="401"):
        engine_for("openai", proxy.url).transcribe(audio.decode(FIXTURES / "hello.ogg"))
    assert len(proxy.transcriptions()) == 1  # a wrong key is not retried


def test_server_killed_mid_job_then_back(model_path, tmp_path):
    """Wyoming server killed (SIGKILL) while it holds a chunk; back a moment later: the voice is
    complete, each chunk once, in order."""
    server = SpeechServer("wyoming", model_path, log_dir=tmp_path).start()
    try:
        engine = engine_for("wyoming", server.url)
        samples = audio.decode(long_voice(tmp_path, 2))
        seen, outcome = [], {}

        def run():
            try:
                outcome["result"] = engine.transcribe(samples, on_segment=seen.append)
            except Exception as exc:  # reported below
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:  # the first chunk is back: the next is in flight
            time.sleep(0.05)
        server.kill()
        time.sleep(1.5)
        server.start()
        worker.join(300)
    finally:
        server.kill()
    assert "error" not in outcome, outcome
    result = outcome["result"]
    assert wer(" ".join([EXPECTED["long.ogg"]] * 2), result.text) <= 0.25, result.text
    assert [s.start for s in result.segments] == sorted({s.start for s in result.segments})


def test_fallback_to_local_when_every_server_is_down(model_path, tmp_path):
    engine = engine_for(
        "openai",
        f"http://127.0.0.1:{free_port()}/v1",
        WHISPER_FALLBACK="local",
        WHISPER_FALLBACK_MODEL=model_path,
        WHISPER_CACHE_DIR=str(tmp_path),
    )
    result = engine.transcribe(audio.decode(FIXTURES / "weather.ogg"))
    assert wer(EXPECTED["weather.ogg"], result.text) <= 0.25
    assert engine.endpoints()[0].state == "down"


# -- the command line --------------------------------------------------------------------------


def voicebot(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "WHISPER_"))}
    return subprocess.run(
        [sys.executable, "-m", "voicebot", "--env-file", "/nonexistent", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


@pytest.mark.parametrize("kind", ["openai", "wyoming"])
def test_cli_transcribe_through_a_server(kind, request):
    url = server_of(kind, request).url
    done = voicebot(
        "transcribe",
        str(FIXTURES / "weather.ogg"),
        str(FIXTURES / "silence.ogg"),
        WHISPER_ENGINE=kind,
        WHISPER_URL=url,
        WHISPER_API_KEY="sk-secret-never-shown",
    )
    assert done.returncode == 0, done.stderr
    assert wer(EXPECTED["weather.ogg"], done.stdout.split("<==", 1)[1].split("==>")[0]) <= 0.25
    assert "silence.ogg: no speech detected" in done.stderr
    assert "leaves this machine" in done.stderr  # said plainly
    assert "sk-secret" not in done.stderr + done.stdout


def test_remote_only_install_runs_without_faster_whisper(wyoming_server):
    """What the remote-only image is: no faster_whisper, ctranslate2, onnxruntime. The bot's
    modules import and the CLI transcribes through a server; the local engine is a config error."""
    blocker = (
        "import sys\nclass Block:\n def find_spec(self, name, *a):\n"
        "  if name.split('.')[0] in ('faster_whisper', 'ctranslate2', 'onnxruntime', 'tokenizers'):\n"
        "   raise ModuleNotFoundError(name=name)\nsys.meta_path.insert(0, Block())\n"
        "import voicebot.app, voicebot.core.assembly, voicebot.telegram, voicebot.engine.loader\n"
        "from voicebot.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "WHISPER_"))}

    def run(*args, **env):
        return subprocess.run(
            [sys.executable, "-c", blocker, "--env-file", "/nonexistent", *args],
            cwd=ROOT,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    done = run("transcribe", str(FIXTURES / "hello.ogg"), WHISPER_ENGINE="wyoming", WHISPER_URL=wyoming_server.url)
    assert done.returncode == 0 and "hello" in done.stdout.lower(), done.stderr
    local = run("transcribe", str(FIXTURES / "hello.ogg"))
    assert local.returncode == 2 and local.stderr.count("\n") == 1 and "WHISPER_ENGINE" in local.stderr
    fallback = run(
        "transcribe",
        str(FIXTURES / "hello.ogg"),
        WHISPER_ENGINE="wyoming",
        WHISPER_URL=wyoming_server.url,
        WHISPER_FALLBACK="local",
    )
    assert fallback.returncode == 2 and "WHISPER_FALLBACK" in fallback.stderr


def test_doctor_checks_each_server(openai_server):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    done = voicebot(
        "doctor",
        API_ID="1",
        API_HASH="0" * 32,
        WHISPER_ENGINE="openai",
        WHISPER_URL=f"{openai_server.url},{dead}",
        DATA_DIR="/tmp/vb-doctor-data",
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    ours = f"127.0.0.1:{openai_server.port}/v1"
    assert f"ok   {ours}: reachable" in lines
    assert any(line.startswith(f"ok   {ours}: transcribed a 1 s test clip") for line in lines)
    assert any(line.startswith("FAIL " + dead.split("//")[1]) and "unreachable" in line for line in lines)
    assert any("leaves this machine" in line for line in lines)


def test_bad_url_is_one_line_and_exit_2():
    done = voicebot(
        "transcribe", str(FIXTURES / "hello.ogg"), WHISPER_ENGINE="openai", WHISPER_URL="http://gpu:8000/v1,gpu2:8000"
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "WHISPER_URL" in done.stderr and "Traceback" not in done.stderr


# -- the running bot over the loopback Telegram --------------------------------------------------


async def start_bot(fakegram, tmp_path, engine, **env):
    bot = RunningBot(fakegram, engine, tmp_path / "bot", env)
    await bot.start()
    alice = await fakegram.new_user("Alice", username="alice")
    inbox = Inbox(alice, bot.id)
    await alice.get_dialogs()
    return bot, alice, inbox


async def send_voice(client, bot, path):
    return await client.send_file(bot.username, path, voice_note=True)


@pytest.mark.wire
@pytest.mark.parametrize("kind", ["openai", "wyoming"])
async def test_bot_through_each_engine(kind, request, fakegram, tmp_path):
    url = server_of(kind, request).url
    bot, alice, inbox = await start_bot(fakegram, tmp_path, engine_for(kind, url), WHISPER_ENGINE=kind, WHISPER_URL=url)
    try:
        sent = [await send_voice(alice, bot, FIXTURES / name) for name in ("hello.ogg", "weather.ogg")]
        await inbox.wait(lambda: all(transcribed(inbox, m.id) for m in sent), timeout=120)
        for message, name in zip(sent, ("hello.ogg", "weather.ogg")):
            (text,) = inbox.replies_to(message.id)
            assert wer(EXPECTED[name], text) <= 0.25
        owner = await bot.owner()
        saved = Inbox(owner, bot.id)  # .status answers in the owner's Saved Messages
        await owner.send_message("me", ".status")
        await saved.wait(lambda: any("📊" in t for t in saved.texts.values()))
        (status,) = [t for t in saved.texts.values() if "📊" in t]
        assert f"{url.split('//')[1].rstrip('/')}: ok (2 done, 0 failed)" in status
        assert "on remote" in status
    finally:
        await bot.stop()


@pytest.mark.wire
async def test_bot_waits_for_a_server_down_at_start(model_path, fakegram, tmp_path):
    """Nothing lost: the voice waits (journaled) until the server comes up, then is answered once."""
    server = SpeechServer("openai", model_path, log_dir=tmp_path)
    bot, alice, inbox = await start_bot(
        fakegram, tmp_path, engine_for("openai", server.url), WHISPER_ENGINE="openai", WHISPER_URL=server.url
    )
    try:
        sent = await send_voice(alice, bot, FIXTURES / "weather.ogg")
        await inbox.wait(lambda: inbox.replies_to(sent.id))  # the placeholder
        await asyncio.sleep(3)
        assert not transcribed(inbox, sent.id)
        await asyncio.to_thread(server.start)
        await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=120)
        await asyncio.sleep(1)
        (text,) = inbox.replies_to(sent.id)
        assert wer(EXPECTED["weather.ogg"], text) <= 0.25
        assert bot.bot.state.journal.find((await alice.get_me()).id, sent.id).state == "done"
    finally:
        await bot.stop()
        server.kill()


@pytest.mark.wire
async def test_bot_long_voice_across_two_servers_with_progress(openai_server, second_openai_server, fakegram, tmp_path):
    urls = f"{openai_server.url},{second_openai_server.url}"
    bot, alice, inbox = await start_bot(
        fakegram,
        tmp_path,
        engine_for("openai", *urls.split(",")),
        WHISPER_ENGINE="openai",
        WHISPER_URL=urls,
        PROGRESS_INTERVAL_SECONDS="1",
    )
    try:
        sent = await send_voice(alice, bot, long_voice(tmp_path, 3))
        await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=240)
        (reply_id,) = [i for i, to in inbox.reply_to.items() if to == sent.id]
        progress = [text for i, text in inbox.edits if i == reply_id and text.startswith("🎙")]
        assert progress and "Last summer" in progress[0]  # first words before the end
        final = inbox.texts[reply_id]
        assert wer(" ".join([EXPECTED["long.ogg"]] * 3), final) <= 0.25
        assert all(e.done >= 2 for e in bot.engine.endpoints())
    finally:
        await bot.stop()
