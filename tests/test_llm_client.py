"""voicebot/llm/client.py against a real LLM server: llama.cpp's OpenAI-compatible server with a
tiny random-weight model (tests/llm_server.py), and a proxy in front of it that kills it
mid-request, holds requests past the timeout, answers 500 and 429. Its words are noise: these
tests check the wiring, the faults and the key, never what the model says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from voicebot.llm import LlmClient, LlmError

from .llm_server import LlmFaultProxy, LlmServer
from .servers import free_port
from .terminal import ROOT
from .test_login import API_HASH, API_ID, alices_account, logged_in_session, voicebot

pytestmark = pytest.mark.llm

KEY = "sk-test-9f3a1c7e5b2d"  # long enough for the log scrubber (6+ characters)


def client(url: str, *, key: str | None = None, timeout: float = 30, model: str = "tiny") -> LlmClient:
    return LlmClient(url, model, key, timeout)


async def complete(url: str, **options) -> str:
    llm = client(url, **options)
    try:
        return await llm.complete("Summarise the transcript in two lines.", "Hello, this is a voice.", max_tokens=40)
    finally:
        await llm.aclose()


async def test_a_completion_round_trip(llm_server):
    """The server's answer comes back as text, the request as the contract says: the model,
    system then user, the caps; LLM_URL with or without /v1."""
    with LlmFaultProxy(llm_server) as proxy:
        for url in (proxy.url, proxy.url.removesuffix("/v1")):
            answer = await complete(url, model=llm_server.model)
            assert isinstance(answer, str) and answer.strip()
    bodies = [body for _, body in proxy.completions()]
    assert len(bodies) == 2
    for body in bodies:
        assert body["model"] == "tiny" and body["max_tokens"] == 40 and body["stream"] is False
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["messages"][1]["content"] == "Hello, this is a voice."


async def test_the_answer_is_the_completion_text(llm_server):
    """What the server said, stripped, a reasoning model's <think> preamble dropped."""
    with LlmFaultProxy(llm_server, ["reply:<think>hmm</think>\n  A short summary. \n"]) as proxy:
        assert await complete(proxy.url) == "A short summary."


async def test_the_server_killed_mid_request_is_an_llm_error(llm_model, tmp_path):
    server = LlmServer(llm_model, log_dir=tmp_path).start()
    try:
        with LlmFaultProxy(server, ["kill"]) as proxy:
            with pytest.raises(LlmError) as caught:
                await complete(proxy.url)
            assert "mid-request" in caught.value.reason and caught.value.status is None
            assert server.process.poll() is not None  # it really died
            with pytest.raises(LlmError, match="upstream down|502"):  # down: the next call fails too
                await complete(proxy.url)
            server.start()  # back on the same port: the same URL works again
            assert await complete(proxy.url)
    finally:
        server.kill()


async def test_a_dropped_connection_is_an_llm_error(llm_server):
    with LlmFaultProxy(llm_server, ["drop"]) as proxy, pytest.raises(LlmError, match="mid-request"):
        await complete(proxy.url)


async def test_slow_past_the_timeout_is_an_llm_error_and_the_client_recovers(llm_server):
    """The proxy holds the request until the client gives up: the error names the setting."""
    with LlmFaultProxy(llm_server, ["hang"]) as proxy:
        llm = client(proxy.url, timeout=1)
        try:
            with pytest.raises(LlmError) as caught:
                await llm.complete("Summarise.", "A voice.", max_tokens=10)
            assert "LLM_TIMEOUT_SECONDS" in caught.value.reason and caught.value.status is None
            assert await llm.complete("Summarise.", "A voice.", max_tokens=10)  # the next one passes
        finally:
            await llm.aclose()
    assert [action for action, _ in proxy.completions()] == ["hang", "pass"]


async def test_a_500_is_an_llm_error_at_once(llm_server):
    with LlmFaultProxy(llm_server, ["500"]) as proxy, pytest.raises(LlmError) as caught:
        await complete(proxy.url)
    assert caught.value.status == 500 and "injected 500" in caught.value.reason
    assert "\n" not in str(caught.value)
    assert [action for action, _ in proxy.completions()] == ["500"]  # no retry on a 500


@pytest.mark.parametrize("status", ["429", "503"])
async def test_a_short_retry_after_is_waited_out_once(llm_server, status):
    with LlmFaultProxy(llm_server, [f"{status}:0"]) as proxy:
        assert await complete(proxy.url)
    assert [action for action, _ in proxy.completions()] == [f"{status}:0", "pass"]


async def test_a_429_twice_is_an_llm_error_after_one_retry(llm_server):
    with LlmFaultProxy(llm_server, ["429:0", "429:0"]) as proxy, pytest.raises(LlmError) as caught:
        await complete(proxy.url)
    assert caught.value.status == 429 and caught.value.retry_after == 0
    assert [action for action, _ in proxy.completions()] == ["429:0", "429:0"]


async def test_a_long_retry_after_is_not_waited_for_but_passed_on(llm_server):
    """Waiting 30 s is the caller's decision (a summary can be skipped): it learns how long."""
    with LlmFaultProxy(llm_server, ["429:30"]) as proxy, pytest.raises(LlmError) as caught:
        await complete(proxy.url, timeout=60)
    assert caught.value.status == 429 and caught.value.retry_after == 30
    assert "retry after 30 s" in caught.value.reason
    assert [action for action, _ in proxy.completions()] == ["429:30"]


def test_one_client_serves_one_event_loop_after_another(llm_server):
    """The doctor's asyncio.run, then the bot's loop: the connection pool follows the loop."""
    import asyncio

    llm = client(llm_server.url)
    for _ in range(2):
        assert asyncio.run(llm.complete("Summarise.", "A voice.", max_tokens=5))


async def test_an_unreachable_server_is_an_llm_error():
    with pytest.raises(LlmError, match="unreachable"):
        await complete(f"http://127.0.0.1:{free_port()}/v1")


# -- the key, and doctor ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(llm_model, tmp_path_factory):
    """The same server refusing requests without the key (llama_cpp.server --api_key)."""
    with LlmServer(llm_model, api_key=KEY, log_dir=tmp_path_factory.mktemp("keyed")) as server:
        yield server


async def test_the_key_is_sent_as_bearer(keyed_server):
    assert await complete(keyed_server.url, key=KEY)
    with pytest.raises(LlmError) as caught:
        await complete(keyed_server.url, key="sk-wrong-key-0000")
    assert caught.value.status == 401 and "sk-wrong-key-0000" not in str(caught.value)
    assert "sk-test" not in repr(client(keyed_server.url, key=KEY))


async def test_a_key_the_server_echoes_back_is_not_in_the_error(llm_server):
    with LlmFaultProxy(llm_server, ["401"]) as proxy, pytest.raises(LlmError) as caught:
        await complete(proxy.url, key=KEY)
    assert caught.value.status == 401 and "invalid key ***" in caught.value.reason
    assert KEY not in str(caught.value)


def doctor(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "WHISPER_", "LLM_", "DATA_DIR"))}
    return subprocess.run(
        [sys.executable, "-m", "voicebot", "--env-file", "/nonexistent", "doctor"],
        cwd=ROOT,
        env={**clean, "API_ID": "1", "API_HASH": "0" * 32, "DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_doctor_checks_a_live_and_a_dead_llm(keyed_server, tmp_path):
    host = f"127.0.0.1:{keyed_server.port}"
    live = doctor(tmp_path, LLM_URL=keyed_server.url, LLM_MODEL="tiny", LLM_API_KEY=KEY, LOG_LEVEL="DEBUG")
    lines = live.stdout.splitlines()
    assert any(line.startswith(f"ok   LLM {host}: tiny answered a test prompt") for line in lines), live.stdout
    assert f"note LLM_URL is set: transcripts are sent to {host} (this machine)" in lines

    dead = f"127.0.0.1:{free_port()}"
    down = doctor(tmp_path, LLM_URL=f"http://{dead}", LLM_MODEL="tiny", LLM_API_KEY=KEY, LLM_TIMEOUT_SECONDS="5")
    assert down.returncode == 1
    (failed,) = [line for line in down.stdout.splitlines() if line.startswith("FAIL LLM")]
    assert failed.startswith(f"FAIL LLM {dead}: unreachable")
    for done in (live, down):
        assert KEY not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_doctor_says_the_key_is_wrong_without_showing_it(keyed_server, tmp_path):
    wrong = "sk-wrong-key-1234"
    done = doctor(tmp_path, LLM_URL=keyed_server.url, LLM_MODEL="tiny", LLM_API_KEY=wrong)
    (failed,) = [line for line in done.stdout.splitlines() if line.startswith("FAIL LLM")]
    assert "401" in failed
    assert wrong not in done.stdout + done.stderr and KEY not in done.stdout + done.stderr


# -- the running bot's startup line -------------------------------------------------------------


@pytest.fixture
def telegram():
    """The fake Telegram in a thread, with our app (as tests/test_login.py has it)."""
    from .fakegram import ServerThread
    from .fakegram.handshake import trust_server_key

    trust_server_key()
    with ServerThread() as thread:
        thread.call(thread.server.register_app, API_ID, API_HASH)
        yield thread


@pytest.mark.wire
def test_the_startup_log_says_where_transcripts_go_and_never_the_key(telegram, tmp_path, model_path):
    """`run` at DEBUG, with a key: the line names the LLM's host, and the key is nowhere."""
    alice = alices_account(telegram, tmp_path)
    logged_in_session(telegram, alice, tmp_path / "data")
    env = {"LLM_URL": "http://llm.internal:11434/v1", "LLM_MODEL": "llama3.2", "LLM_API_KEY": KEY}
    with voicebot(tmp_path, "run", WHISPER_MODEL=model_path, LOG_LEVEL="DEBUG", **env) as bot:
        line = bot.expect("voicebot is running as Alice", timeout=120) + bot.expect("\n")
        assert "transcripts are sent to the LLM at llm.internal:11434: text leaves this machine" in line
        assert KEY not in bot.screen
