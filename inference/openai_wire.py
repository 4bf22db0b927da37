"""The OpenAI completions wire format: request bodies, server-sent events, chunks, HTTP errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .engine import Sampling
from .errors import InferenceError


class RemoteEngineError(InferenceError):
    """The remote inference server could not be used; the text says why, in one sentence."""


class BadStream(RemoteEngineError):
    """The server's answer is not the OpenAI server-sent-events stream it should be (the text
    is the detail; the engine says which server)."""


def base_url(url: str) -> str:
    """`url` without a trailing slash or `/v1` (endpoints are added to it)."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def display_url(url: str) -> str:
    """`url` fit for a message or a log: scheme, host and port only (no user, password, path)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def completion_body(
    model: str, prompt_ids: Sequence[int], sampling: Sampling, *, usage: bool = True
) -> dict[str, Any]:
    """The JSON body of a streaming `/v1/completions` request for token ids (vLLM's extra
    fields `return_token_ids`, `allowed_token_ids`, `stop_token_ids` ride along; servers that
    do not know them ignore them)."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(prompt_ids),
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "stream": True,
        "return_token_ids": True,
    }
    if usage:
        body["stream_options"] = {"include_usage": True}
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.stop_token_ids:
        body["stop_token_ids"] = list(sampling.stop_token_ids)
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.allowed_token_ids:
        body["allowed_token_ids"] = list(sampling.allowed_token_ids)
    if not sampling.skip_special_tokens:
        body["skip_special_tokens"] = False
    return body


async def sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """The `data` of each server-sent event in `lines` (multi-line data joined with newlines);
    comments, `event:`/`id:`/`retry:` fields and blank keep-alives are skipped."""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry"):
            raise BadStream(f"a line that is not a server-sent event field: {line[:60]!r}")
    if data:
        yield "\n".join(data)


@dataclass(frozen=True)
class Chunk:
    """What one streamed completion chunk says."""

    text: str = ""
    token_ids: tuple[int, ...] | None = None
    """The new tokens' ids (None: the server does not report them)."""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    """From a usage report (the last chunk)."""
    cached_tokens: int | None = None
    """Prompt tokens served from the server's prefix cache, when it reports them."""
    completion_tokens: int | None = None
    has_choice: bool = False
    """False for a usage-only chunk."""


def parse_chunk(data: str) -> Chunk:
    """One `data:` payload of a completions stream; BadStream or RemoteEngineError on error."""
    try:
        obj = json.loads(data)
    except ValueError as err:
        raise BadStream(f"data that is not JSON: {data[:60]!r}") from err
    if not isinstance(obj, dict):
        raise BadStream(f"data that is not a JSON object: {data[:60]!r}")
    if "error" in obj:
        raise RemoteEngineError(
            f"The inference server stopped the completion: {error_message(obj)}"
        )
    choices = obj.get("choices") or []
    usage = obj.get("usage") or {}
    if not isinstance(choices, list) or not isinstance(usage, dict):
        raise BadStream("a chunk whose choices or usage have the wrong shape")
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    facts: dict[str, Any] = {
        "prompt_tokens": _int_or_none(usage.get("prompt_tokens")),
        "cached_tokens": _int_or_none(cached),
        "completion_tokens": _int_or_none(usage.get("completion_tokens")),
    }
    if not choices:
        return Chunk(**facts)
    choice = choices[0]
    if not isinstance(choice, dict):
        raise BadStream("a choice that is not a JSON object")
    text = choice.get("text")
    if text is None:  # llama.cpp's native stream calls it `content`
        text = choice.get("content", "")
    ids = choice.get("token_ids")
    if not isinstance(text, str) or not (ids is None or isinstance(ids, list)):
        raise BadStream("a choice whose text or token_ids have the wrong type")
    return Chunk(
        text=text,
        token_ids=None if ids is None else tuple(int(i) for i in ids),
        finish_reason=choice.get("finish_reason"),
        has_choice=True,
        **facts,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def error_message(body: Any) -> str:
    """The server's own message out of an error body (OpenAI, vLLM or llama.cpp shape)."""
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return _one_line(text)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return _one_line(str(err.get("message") or err.get("detail") or err))
        return _one_line(str(err))
    return _one_line(str(body))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def http_error(status: int, body: bytes | str, url: str, what: str) -> RemoteEngineError:
    """The user's message for an HTTP error `status` from `url` while doing `what`."""
    where = display_url(url)
    said = error_message(body)
    if status in (401, 403):
        return RemoteEngineError(
            f"The inference server at {where} refused the API key (HTTP {status}) for {what}; "
            "check engine.apiKeyFile or $MOE_LSP_ENGINE_API_KEY."
        )
    if status == 404:
        return RemoteEngineError(
            f"The inference server at {where} has no {what} (HTTP 404: {said}); check engine.url "
            "(the server's base URL) and engine.model."
        )
    return RemoteEngineError(
        f"The inference server at {where} failed {what} (HTTP {status}: {said})."
    )


def transport_error(err: Exception, url: str, what: str, timeout: float) -> RemoteEngineError:
    """The user's message for an httpx transport error (refused, timed out, cut off)."""
    import httpx

    where = display_url(url)
    if isinstance(err, httpx.ConnectTimeout):
        return RemoteEngineError(f"Connecting to the inference server at {where} timed out.")
    if isinstance(err, httpx.ConnectError):
        return RemoteEngineError(
            f"Cannot connect to the inference server at {where} (connection refused or host "
            "unknown); is it running, and is engine.url right?"
        )
    if isinstance(err, httpx.TimeoutException):
        return RemoteEngineError(
            f"The inference server at {where} sent nothing for {timeout:g} s during {what}."
        )
    if isinstance(err, httpx.RemoteProtocolError):
        return RemoteEngineError(
            f"The inference server at {where} broke off {what} ({type(err).__name__})."
        )
    return RemoteEngineError(
        f"The inference server at {where} could not be reached for {what} ({type(err).__name__})."
    )
