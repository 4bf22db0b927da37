"""`OpenAIEngine`: a remote OpenAI-compatible server (`vllm serve`, llama.cpp), streamed SSE."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from .config import EngineConfig
from .engine import (
    ChatTemplate,
    Delta,
    EngineHealth,
    EngineState,
    EngineStats,
    EngineTokenizer,
    Sampling,
)
from .errors import EngineConfigError, EngineNotReady, EngineStartError, InferenceError
from .openai_wire import (
    BadStream,
    RemoteEngineError,
    base_url,
    completion_body,
    display_url,
    http_error,
    parse_chunk,
    sse_data,
    transport_error,
)
from .remote_tokenizer import RemoteTokenizer
from .tokenizer import FolderTokenizer, chat_template_of

log = logging.getLogger(__name__)

API_KEY_ENV = "MOE_LSP_ENGINE_API_KEY"
"""Environment variable holding the server's API key when no engine.apiKeyFile is set."""
COMPLETIONS = "/v1/completions"
TOKENIZE_TIMEOUT = 5.0
"""Longest wait, in seconds, for an answer from /tokenize, /detokenize and /v1/models."""


def read_api_key(path: str | None) -> str | None:
    """The API key from `path`, else from $MOE_LSP_ENGINE_API_KEY; None when there is none."""
    if path:
        try:
            return Path(path).expanduser().read_text(encoding="utf-8").strip() or None
        except OSError as err:
            raise EngineConfigError(
                f"engine.apiKeyFile {path} cannot be read ({err.strerror or type(err).__name__})."
            ) from err
    return os.environ.get(API_KEY_ENV, "").strip() or None


class OpenAIEngine:
    """`Engine` on a remote server's `/v1/completions`: token ids in, streamed deltas out.
    Closing a stream (or `abort`) closes its HTTP connection, which makes the server abort."""

    def __init__(self, config: EngineConfig, model: str) -> None:
        self.config = config
        self._oc = config.openai
        url = self._oc.url or ""
        self._base = base_url(url)
        self._where = display_url(url)
        self.model = model or config.model or ""
        """The served model's name (asked of the server at start when not configured)."""
        self.tokenizer: EngineTokenizer | None = None
        self.chat_template: ChatTemplate | None = None
        self._state = EngineState.STOPPED
        self._message = ""
        self._stats = EngineStats()
        self._headers: dict[str, str] = {}
        self._sync: httpx.Client | None = None
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live: dict[str, httpx.Response] = {}
        """Responses being read, by request id (for `abort`)."""
        self._open: set[str] = set()
        """Requests whose stream is open (from before the answer's headers to its end)."""
        self._aborted: set[str] = set()

    # -- life cycle ---------------------------------------------------------------------------
    def _timeout(self) -> httpx.Timeout:
        oc = self._oc
        return httpx.Timeout(oc.read_timeout, connect=oc.connect_timeout)

    @property
    def _quick(self) -> httpx.Timeout:
        """Waits for the calls made outside a completion stream (at most TOKENIZE_TIMEOUT)."""
        oc = self._oc
        return httpx.Timeout(
            min(oc.read_timeout, TOKENIZE_TIMEOUT),
            connect=min(oc.connect_timeout, TOKENIZE_TIMEOUT),
        )

    def start(self) -> None:
        """Check the server, find the model's name and tokenizer (blocking)."""
        self._state = EngineState.LOADING
        t0 = time.monotonic()
        try:
            key = read_api_key(self._oc.api_key_file)
            self._headers = {"Authorization": f"Bearer {key}"} if key else {}
            logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per tokenize call
            # The tokenizer's calls block the event loop while prompts are built: short waits.
            self._sync = httpx.Client(headers=self._headers, timeout=self._quick)
            self.model = self._served_model()
            self.tokenizer, self.chat_template = self._tokenizer()
        except InferenceError as err:
            self._fail(str(err))
            raise
        except Exception as err:
            log.exception("remote engine failed to start")
            self._fail(f"The remote engine at {self._where} failed to start: {type(err).__name__}")
            raise EngineStartError(self._message) from err
        self._stats.load_seconds = time.monotonic() - t0
        self._state = EngineState.READY
        self._message = ""
        log.info("remote engine ready: %s at %s", self.model, self._where)

    def _get(self, path: str) -> Any:
        assert self._sync is not None
        url = self._base + path
        try:
            resp = self._sync.get(url)
        except httpx.HTTPError as err:
            raise transport_error(err, url, path, self._quick.read or 0) from err
        if resp.status_code != 200:
            raise http_error(resp.status_code, resp.content, url, path)
        try:
            return resp.json()
        except ValueError as err:
            raise RemoteEngineError(f"{self._where}{path} did not answer with JSON.") from err

    def _served_model(self) -> str:
        """The configured model if the server serves it, else the first one it lists."""
        data = self._get("/v1/models")
        listed = data.get("data") if isinstance(data, dict) else None
        names = [m["id"] for m in listed or [] if isinstance(m, dict) and "id" in m]
        if not names:
            raise RemoteEngineError(f"The inference server at {self._where} lists no model.")
        if self.model and self.model not in names:
            raise EngineConfigError(
                f"The inference server at {self._where} does not serve '{self.model}'; "
                f"it serves: {', '.join(names[:5])}."
            )
        return self.model or names[0]

    def _tokenizer(self) -> tuple[EngineTokenizer, ChatTemplate | None]:
        """A local tokenizer folder when configured, else the server's /tokenize."""
        folder = self._oc.tokenizer
        if folder:
            path = Path(folder).expanduser()
            if not (path / "tokenizer.json").is_file():
                raise EngineConfigError(f"engine.tokenizer folder {path} has no tokenizer.json.")
            return FolderTokenizer.from_folder(path), _local_chat_template(path)
        assert self._sync is not None
        remote = RemoteTokenizer.probe(self._sync, self._base, self.model, self._quick.read or 0)
        if remote is not None:
            remote.on_unreachable = lambda: self._fail(
                f"Lost the inference server at {self._where}."
            )
        else:
            raise EngineConfigError(
                f"The inference server at {self._where} cannot tokenize (no /tokenize); set "
                "engine.tokenizer to a local folder with the model's tokenizer.json."
            )
        return remote, self._remote_chat_template(remote)

    def _remote_chat_template(self, tok: RemoteTokenizer) -> ChatTemplate | None:
        """vLLM's /tokenize renders chat messages with the served model's template."""
        sync = self._sync
        assert sync is not None

        def render(messages: list[dict[str, str]]) -> str:
            body = {"model": self.model, "messages": messages, "add_generation_prompt": True}
            resp = sync.post(self._base + "/tokenize", json=body)
            if resp.status_code != 200:
                raise http_error(resp.status_code, resp.content, self._base, "/tokenize (chat)")
            return tok.decode(resp.json()["tokens"])

        try:
            render([{"role": "user", "content": "x"}])
        except Exception as err:
            log.info("the server renders no chat template: %s", err)
            return None
        return render

    def _fail(self, message: str) -> None:
        self._state = EngineState.FAILED
        self._message = message

    def shutdown(self) -> None:
        """Close the HTTP clients (open streams end with them)."""
        self._state = EngineState.STOPPED
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
        client, self._client = self._client, None
        loop = self._loop
        if client is None or loop is None or loop.is_closed() or not loop.is_running():
            return  # a loop that no longer runs is not run again from here: the sockets go
        if _running_loop() is loop:  # called on the loop itself: close in the background
            loop.create_task(client.aclose())
            return
        try:  # with the process, or with the garbage collector
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=2)
        except Exception:
            log.debug("closing the HTTP client failed", exc_info=True)

    # -- requests -----------------------------------------------------------------------------
    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(headers=self._headers, timeout=self._timeout())
            self._loop = loop
        return self._client

    async def stream(
        self, request_id: str, prompt_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[Delta]:
        """Stream deltas; closing the iterator or cancelling the task closes the HTTP stream."""
        if self._state is not EngineState.READY:
            raise EngineNotReady(self._message or "The remote engine is not connected yet.")
        client = self._async_client()
        url = self._base + COMPLETIONS
        body = completion_body(self.model, prompt_ids, sampling)
        self._stats.requests += 1
        self._stats.prompt_tokens += len(prompt_ids)
        final: Delta | None = None
        cached: int | None = None
        self._open.add(request_id)
        try:
            async with client.stream("POST", url, json=body) as resp:
                if resp.status_code != 200:
                    raise http_error(resp.status_code, await resp.aread(), url, COMPLETIONS)
                self._live[request_id] = resp
                async for data in sse_data(resp.aiter_lines()):
                    if data.strip() == "[DONE]":
                        break
                    chunk = parse_chunk(data)
                    if chunk.cached_tokens is not None:
                        cached = chunk.cached_tokens
                        self._stats.cached_prompt_tokens += cached
                    if not chunk.has_choice:
                        continue
                    ids = chunk.token_ids or ()
                    n = len(ids) if chunk.token_ids is not None else int(bool(chunk.text))
                    self._stats.generated_tokens += n
                    delta = Delta(chunk.text, n, chunk.finish_reason is not None, token_ids=ids)
                    if delta.finished:  # held back until the usage report that follows it
                        final = replace(delta, finish_reason=chunk.finish_reason)
                    elif delta.text or delta.tokens:
                        yield delta
            if final is None:
                if request_id in self._aborted:
                    return
                raise BadStream("it ended before the completion finished")
            self._stats.finished += 1
            yield replace(final, cached_tokens=cached)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BadStream as err:
            self._stats.failed += 1
            raise RemoteEngineError(
                f"The inference server at {self._where} sent a stream that is not OpenAI "
                f"server-sent events: {err}"
            ) from err
        except (httpx.HTTPError, httpx.StreamError) as err:
            if request_id in self._aborted:
                return
            self._stats.failed += 1
            if isinstance(err, httpx.ConnectError):
                self._fail(f"Lost the inference server at {self._where}.")
            raise transport_error(err, url, "a completion", self._oc.read_timeout) from err
        except RemoteEngineError:
            self._stats.failed += 1
            raise
        finally:
            self._live.pop(request_id, None)
            self._open.discard(request_id)
            if final is None or request_id in self._aborted:
                self._stats.aborted += 1
            self._aborted.discard(request_id)

    async def abort(self, request_id: str) -> None:
        """Close `request_id`'s HTTP stream (the server aborts it); unknown ids are ignored."""
        resp = self._live.pop(request_id, None)
        if resp is not None:
            self._aborted.add(request_id)
            await resp.aclose()

    def health(self) -> EngineHealth:
        """Ready while the server answers; failed after a refused connection (the host then
        reconnects with backoff)."""
        return EngineHealth(self._state, self._message)

    def stats(self) -> EngineStats:
        """Counters; `running` is the streams still open to the server."""
        s = self._stats
        return replace(s, running=len(self._open), extra={"backend": "openai", "model": self.model})


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _local_chat_template(folder: Path) -> ChatTemplate | None:
    """The chat template of a local tokenizer folder (needs transformers), or None."""
    config = folder / "tokenizer_config.json"
    has = (folder / "chat_template.jinja").is_file() or (
        config.is_file() and '"chat_template"' in config.read_text(encoding="utf-8")
    )
    if not has:
        return None
    try:
        from transformers import AutoTokenizer

        return chat_template_of(AutoTokenizer.from_pretrained(str(folder)))
    except Exception as err:
        log.info("the chat template of %s cannot be used: %s", folder, err)
        return None
