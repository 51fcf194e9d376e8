"""The LLM: one OpenAI-compatible chat endpoint (``LLM_URL``), opt-in.

Ollama, llama.cpp's server, vLLM, LocalAI or a hosted API, all through
``POST {LLM_URL}/v1/chat/completions`` (the URL may end in ``/v1`` or not). Nothing is sent
anywhere unless ``LLM_URL`` is set. The only module that imports the HTTP library.

Every failure is :class:`~voicebot.errors.LlmError` with a one-line reason: unreachable, the
connection broken mid-request, no answer within the timeout (one deadline for the whole call,
retry included), an HTTP error, or an answer that is not a chat completion. A 429 or 503 is
retried once when its ``Retry-After`` is short (at most :data:`MAX_RETRY_AFTER_S` and half of
what is left of the deadline); otherwise the error carries ``retry_after`` for the caller. The
key travels only in the ``Authorization`` header: it is in no reason, repr or log line.

Example::

    llm = LlmClient("http://127.0.0.1:11434", "llama3.2", None, timeout=60)
    try:
        summary = await llm.complete("Summarise the transcript in three lines.", transcript)
    except LlmError as exc:
        logger.warning("no summary: {}", exc)
    finally:
        await llm.aclose()
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2

from voicebot.errors import LlmError

__all__ = ["MAX_RETRY_AFTER_S", "LlmClient", "LlmError", "api_base", "host_of", "stays_here"]

RETRY_STATUSES = (429, 503)
MAX_RETRY_AFTER_S = 10.0  # a longer wait is the caller's to decide: it gets retry_after
_THINKING = re.compile(r"^\s*<think>.*?</think>\s*", re.S)  # reasoning models' preamble


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``: what logs and ``doctor`` name (never a path or credentials)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.hostname or '?'}{port}"


def stays_here(url: str) -> bool:
    """The server is on this machine (loopback): text sent to it does not leave."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_base(url: str) -> str:
    """The API's base URL, ending in ``/v1`` whether ``url`` did or not."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


class LlmClient:
    """An OpenAI-compatible chat endpoint. Safe to share between concurrent jobs; the HTTP
    connection pool is made on first use, anew in each event loop that uses it."""

    def __init__(self, url: str, model: str, api_key: str | None, timeout: float):
        self.url = api_base(url)
        self.host = host_of(url)
        self.model = model
        self.timeout = float(timeout)
        self._key = api_key or ""
        self._http: httpx2.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"LlmClient({self.host!r}, model={self.model!r})"

    async def complete(self, system: str, user: str, *, max_tokens: int = 400, temperature: float = 0.2) -> str:
        """The model's answer to ``user`` under ``system`` instructions, stripped (a reasoning
        model's leading ``<think>…</think>`` dropped). Raises :class:`LlmError`."""
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        answer = await self._request("POST", "/chat/completions", body)
        try:
            choice = answer["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._error("answered something that is not a chat completion (no choices[0].message)") from None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise self._error(f"answered no text (finish_reason {choice.get('finish_reason')!r})")
        return _THINKING.sub("", content).strip()

    async def check(self) -> str:
        """For ``doctor``: a one-token test prompt. One line naming the server and the model;
        :class:`LlmError` when it fails (a model the server lacks: with what it does serve)."""
        started = time.monotonic()
        try:
            await self.complete("Answer with one word.", "Say ok.", max_tokens=1, temperature=0.0)
        except LlmError as exc:
            if exc.status in (400, 404):
                served = await self._models()
                if served:
                    raise self._error(f"{exc.reason.removeprefix(self.host + ': ')} (it serves: {served})") from exc
            raise
        return f"{self.host}: {self.model} answered a test prompt in {time.monotonic() - started:.1f} s"

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def _models(self) -> str:
        """The model ids the server lists (``GET /v1/models``), comma-separated; "" if none."""
        try:
            listed = await self._request("GET", "/models")
            ids = [str(m["id"]) for m in listed["data"]]
        except (LlmError, KeyError, TypeError):
            return ""
        return ", ".join(ids[:8]) + (", …" if len(ids) > 8 else "")

    async def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        deadline = time.monotonic() + self.timeout
        for attempt in (1, 2):
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(left):  # the whole call, however the server trickles
                    response = await self._client().request(method, self.url + path, json=body, timeout=left)
            except (TimeoutError, httpx2.TimeoutException):
                raise self._error(f"no answer within {self.timeout:g} s (LLM_TIMEOUT_SECONDS)") from None
            except httpx2.ConnectError as exc:
                raise self._error(f"unreachable ({_brief(exc)})") from None
            except httpx2.TransportError as exc:
                raise self._error(f"the connection broke mid-request ({_brief(exc)})") from None
            except httpx2.HTTPError as exc:  # an answer that cannot be decoded, and the like
                raise self._error(f"the request failed ({_brief(exc)})") from None
            status = response.status_code
            wait = _retry_after(response.headers.get("retry-after")) if status in RETRY_STATUSES else None
            if status in RETRY_STATUSES and attempt == 1:
                pause = 1.0 if wait is None else wait
                if pause <= min(MAX_RETRY_AFTER_S, (deadline - time.monotonic()) / 2):
                    await asyncio.sleep(pause)
                    continue
            if status >= 400:
                after = f", retry after {wait:g} s" if wait is not None else ""
                raise self._error(f"answered {status}{after}: {_message(response)}", status=status, retry_after=wait)
            try:
                return response.json()
            except ValueError:
                raise self._error(f"answered {status} with a body that is not JSON") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:  # a pool is bound to its loop
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._http, self._loop = httpx2.AsyncClient(headers=headers, timeout=self.timeout), loop
        return self._http

    def _error(self, reason: str, **details) -> LlmError:
        """One line, naming the host; the key scrubbed even if a server echoed it back."""
        line = " ".join(f"{self.host}: {reason}".split())
        return LlmError(line.replace(self._key, "***") if self._key else line, **details)


def _brief(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _message(response: httpx2.Response) -> str:
    """The server's own words: OpenAI's ``{"error": {"message"}}``, Ollama's ``{"error"}``,
    FastAPI's ``{"detail"}``, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:200]
    return str(body)[:200]


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
