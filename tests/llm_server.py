"""A real LLM server on loopback, for the LLM's tests: llama.cpp's OpenAI-compatible server
(``llama-cpp-python[server]`` from PyPI) serving a tiny random-weight model made here.

- :func:`install`: the server in its own venv under ``VOICEBOT_SERVERS_DIR`` (default
  ``~/.cache/voicebot-speech-servers``, beside the speech servers), every package pinned. The
  package is C++ built from source (about 4 minutes on 2 cores), for any x86-64 CPU, no
  CUDA or BLAS; the built wheel is kept in ``wheels/`` there, so a new venv is made in seconds.
  ``python3 -m tests.llm_server install`` does it (``.ci/setup``), or the first test.
- :func:`tiny_model`: a llama-architecture GGUF (``gguf`` package) with random weights: two
  layers, 64 wide, a SentencePiece-style vocabulary of ~900 tokens (bytes, characters, common
  English words). Hundreds
  of tokens take milliseconds; what it says is noise: tests check wiring, not words.
- :class:`LlmServer`: the server process. :class:`LlmFaultProxy`: in front of it, kills it
  mid-request, drops the connection, holds a request past the client's timeout, answers 500
  or 429 (Retry-After) or a chosen completion; it records every request body.

Example::

    with LlmServer(tiny_model(tmp_path / "tiny.gguf")) as server, LlmFaultProxy(server, ["500"]) as proxy:
        proxy.url   # http://127.0.0.1:PORT/v1: the first completion gets a 500, then the real server
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

from .servers import ROOT, ProxyHandler, free_port

PACKAGE = "llama-cpp-python==0.3.36"
# Its dependencies with the [server] extra, pinned as resolved on 2026-12-02.
PINS = """
annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 click==8.5.1 diskcache==5.6.3
fastapi==0.165.0 h11==0.16.0 idna==3.20 Jinja2==3.1.6 MarkupSafe==3.0.4 numpy==2.4.6
opentelemetry-api==1.45.2 pydantic==2.14.4 pydantic-settings==2.16.3 pydantic_core==2.50.5
python-dotenv==1.2.4 PyYAML==6.0.4 sse-starlette==3.7.1 starlette==1.10.0 starlette-context==0.3.6
typing-inspection==0.4.5 typing_extensions==4.16.0 uvicorn==0.55.0
""".split()
BUILD_PINS = ["scikit-build-core==1.1.2"]  # the package's build backend (build isolation)
# Generic x86-64 (no AVX and up: any CPU CI lands on), CPU only, no OpenMP (ggml's own threads),
# and none of llama.cpp's tools, examples, tests or the multimodal library: only what the
# Python server loads.
CMAKE_ARGS = " ".join(
    f"-D{flag}"
    for flag in (
        "GGML_NATIVE=OFF",
        *(f"GGML_{isa}=OFF" for isa in ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C", "AVX512")),
        *(f"GGML_{backend}=OFF" for backend in ("BLAS", "CUDA", "VULKAN", "METAL", "OPENMP")),
        "LLAVA_BUILD=OFF",
        *(f"LLAMA_BUILD_{part}=OFF" for part in ("TESTS", "TOOLS", "EXAMPLES", "SERVER")),
        "LLAMA_OPENSSL=OFF",
        "LLAMA_CURL=OFF",
    )
)
MODEL_NAME = "tiny"  # the alias the server answers to (its /v1/models id)


def _venv() -> Path:
    """One venv per pin set and build: a change of either makes a new one."""
    digest = hashlib.sha256("\n".join([PACKAGE, *PINS, *BUILD_PINS, CMAKE_ARGS]).encode()).hexdigest()[:10]
    return ROOT / f"{PACKAGE.replace('==', '-')}-{digest}"


def _wheels() -> Path:
    """Where the built wheel is kept: one folder per set of build flags."""
    return ROOT / "wheels" / hashlib.sha256(CMAKE_ARGS.encode()).hexdigest()[:10]


def _wheel() -> Path | None:
    name, version = PACKAGE.replace("-", "_").split("==")
    found = sorted(_wheels().glob(f"{name}-{version}-*.whl"))
    return found[0] if found else None


def install() -> Path:
    """The venv's python with the server installed, building the wheel first if none is
    cached (once: a lock file keeps parallel runs from building twice)."""
    venv = _venv()
    python = venv / "bin" / "python"
    if (venv / "ok").exists():
        return python
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / "llama-cpp-python.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / "ok").exists():
            return python
        if _wheel() is None:
            _build(_wheels())
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*pip, str(_wheel()), *PINS], check=True)
        (venv / "ok").touch()  # only a complete install counts
    return python


def _build(into: Path) -> None:
    print(f"llm server: building {PACKAGE} from source (a few minutes, once)", file=sys.stderr, flush=True)
    into.mkdir(parents=True, exist_ok=True)
    constraints = into / "build-constraints.txt"
    constraints.write_text("\n".join(BUILD_PINS) + "\n")
    env = {
        **os.environ,
        "CMAKE_ARGS": CMAKE_ARGS,
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
        "PIP_CONSTRAINT": str(constraints),  # reaches the isolated build environment too
    }
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps"]
    argv += ["--no-binary", PACKAGE.split("==")[0], "-w", str(into), PACKAGE]
    subprocess.run(argv, check=True, env=env)


# -- the model -------------------------------------------------------------------------------

N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 64, 2, 4, 128, 8192


# Common words, whole: with every ▁-prefix of each in the vocabulary, SentencePiece's merges
# build them, so English text is a token a word or so (prompt processing grows with tokens).
WORDS = """the and to of in is it you that was for on are with as his they be at one have this from
or had by but what some we can out other were all there when up use your how said an each she
which do their time if will way about many then them would like so these her make see him two has
look more day could go come did no most people my over know than call first who may down been now
find any new work part take get place made where after back little only year came show every good
me give our under name very through just great think say help line before move right old too same
tell does set three want well also small end put home read hand large even here must big high
such why ask change went kind off need house try again point world near hello weather today
tomorrow rain sunny cold warm voice message summary transcript please meeting thanks okay yes""".split()


def _vocabulary() -> tuple[list[bytes], list[float], list[int]]:
    """SentencePiece-style: <unk> <s> </s>, the 256 byte tokens (anything else falls back to
    them), printable ASCII with ▁ for the space, ▁ and a letter, and the words above."""
    from gguf import TokenType

    tokens = [b"<unk>", b"<s>", b"</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>".encode() for b in range(256)]
    types += [TokenType.BYTE] * 256
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ["\u2581", *(chr(c) for c in range(33, 127)), *(f"\u2581{c}" for c in letters + letters.upper())]
    for word in WORDS:  # every prefix, so that the merges can reach the word
        pieces += [f"\u2581{word[:n]}" for n in range(2, len(word) + 1)]
    pieces = list(dict.fromkeys(pieces))
    tokens += [piece.encode() for piece in pieces]
    types += [TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [float(len(piece)) for piece in pieces]  # the longest merge first
    return tokens, scores, [int(t) for t in types]


def tiny_model(path: Path, seed: int = 19) -> Path:
    """Write the tiny model to ``path`` (unless it is there already, complete); returns it."""
    import numpy as np
    from gguf import GGUFWriter

    if path.is_file() and path.stat().st_size > 0:
        return path
    tokens, scores, types = _vocabulary()
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.02, size=shape).astype(np.float32)

    partial = path.with_suffix(".partial")
    writer = GGUFWriter(str(partial), "llama")
    writer.add_name("voicebot-tiny-random")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    # numpy shapes are ggml's reversed: (rows = outputs, columns = inputs). Every embedding
    # carries 1.0 in dimension 0, which the small random layers leave standing; the output
    # rows of the bytes and the control tokens point against it. So it answers printable
    # ASCII (noise, but text a chat can show: < and & included) and never stops early.
    embedding = weights(len(tokens), N_EMBD)
    embedding[:, 0] = 1.0
    output = weights(len(tokens), N_EMBD)
    output[:, 0] = 0.0
    output[: 3 + 256, 0] = -5.0
    writer.add_tensor("token_embd.weight", embedding)
    for i in range(N_LAYER):
        for name, shape in (
            ("attn_q", (N_EMBD, N_EMBD)),
            ("attn_k", (N_EMBD, N_EMBD)),
            ("attn_v", (N_EMBD, N_EMBD)),
            ("attn_output", (N_EMBD, N_EMBD)),
            ("ffn_gate", (N_FF, N_EMBD)),
            ("ffn_up", (N_FF, N_EMBD)),
            ("ffn_down", (N_EMBD, N_FF)),
        ):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(*shape))
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return path


# -- the server --------------------------------------------------------------------------------


class LlmServer:
    """llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1,
    one thread. ``api_key``: the server then refuses requests without that Bearer key."""

    model = MODEL_NAME

    def __init__(self, model_path: Path, *, port: int | None = None, api_key: str = "", log_dir: Path | None = None):
        self.model_path, self.api_key = Path(model_path), api_key
        self.port = port or free_port()
        self.log = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"llm-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> LlmServer:
        argv = [str(install()), "-m", "llama_cpp.server", "--model", str(self.model_path)]
        argv += ["--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--n_ctx", str(N_CTX), "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "False"]
        if self.api_key:
            argv += ["--api_key", self.api_key]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"llm server exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"llm server never answered:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/v1/models", headers={"Authorization": f"Bearer {self.api_key}"})
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LlmServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


class LlmFaultProxy:
    """An HTTP proxy in front of a real OpenAI-compatible server, breaking chosen requests.

    ``plan``: what to do with each coming ``POST …/chat/completions``, in order:

    - ``"pass"``: forward it;
    - ``"500"``; ``"429"``, ``"503"``, or either as ``"429:SECONDS"`` (with ``Retry-After``);
    - ``"401"``: refused, the key echoed in the message (as OpenAI does, partly);
    - ``"hang"``: hold it until the client gives up (slow past any timeout, however loaded
      the machine), then forward it;
    - ``"drop"``: read it, then close the connection without a word;
    - ``"kill"``: forward it and, while the server works on it, call ``on_kill`` (the
      server's :meth:`LlmServer.kill`): the client sees its server die mid-request;
    - ``"reply:TEXT"``: answer a chat completion saying TEXT (the real server untouched).

    Once the plan is used up, everything passes; other requests (``/v1/models``) always do.
    ``requests`` holds (path, action, JSON body) of every request, in order.
    """

    def __init__(self, upstream: LlmServer | int, plan: list[str] | None = None, *, on_kill: Callable | None = None):
        self.upstream_port = upstream if isinstance(upstream, int) else upstream.port
        self.on_kill = on_kill or (None if isinstance(upstream, int) else upstream.kill)
        self.plan = list(plan or [])
        self.requests: list[tuple[str, str, dict | None]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(ProxyHandler):
            def do_GET(self):
                proxy.requests.append((self.path, "pass", None))
                self._forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = "pass"
                if self.path.endswith("/chat/completions"):
                    with proxy._lock:
                        action = proxy.plan.pop(0) if proxy.plan else "pass"
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                proxy.requests.append((self.path, action, parsed))
                if action == "401":  # as OpenAI's "Incorrect API key provided: sk-…": the key echoed
                    message = f"invalid key {self.headers.get('Authorization', '').removeprefix('Bearer ')}"
                    return self._answer(401, {"error": {"message": message}})
                if action in ("500", "503") or action.startswith(("429", "503:")):
                    status, _, after = action.partition(":")
                    headers = {"Retry-After": after} if after else {}
                    return self._answer(int(status), {"error": {"message": f"injected {status}"}}, headers)
                if action.startswith("reply:"):
                    message = {"role": "assistant", "content": action.partition(":")[2]}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    return self._answer(200, {"object": "chat.completion", "choices": [choice]})
                if action == "drop":
                    return self._drop()
                if action == "hang":
                    self._until_client_leaves()
                self._forward(body, kill=action == "kill")

            def _drop(self):
                # RST, not FIN: what the client of a killed process sees once the kernel reaps it
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _forward(self, body: bytes, *, kill: bool = False):
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    if kill:
                        proxy.on_kill()
                    response = upstream.getresponse()
                    data = response.read()
                except OSError:
                    return self._drop() if kill else self._answer(502, {"error": {"message": "upstream down"}})
                finally:
                    upstream.close()
                if kill:  # it answered before it died: the client must still see the death
                    return self._drop()
                self._send(
                    response.status, data, {"Content-Type": response.getheader("Content-Type", "application/json")}
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def completions(self) -> list[tuple[str, dict | None]]:
        """(action, body) of every chat completion request that reached the proxy."""
        return [(action, body) for path, action, body in self.requests if path.endswith("/chat/completions")]

    def __enter__(self) -> LlmFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__" and sys.argv[1:2] == ["install"]:
    print(f"llm server: {install()}")
