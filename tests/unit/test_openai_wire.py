"""Tables of cases for the OpenAI completions wire format: SSE, chunks, URLs, request bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from moe_lsp.inference.engine import Sampling
from moe_lsp.inference.openai_wire import (
    BadStream,
    RemoteEngineError,
    base_url,
    completion_body,
    display_url,
    parse_chunk,
    sse_data,
)


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def _events(text: str) -> list[str]:
    return [e async for e in sse_data(_lines(text))]


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        ("data: a\n\ndata: b\n\n", ["a", "b"]),
        ("data:a\n\n", ["a"]),
        ("data: a\ndata: b\n\n", ["a\nb"]),
        (": keep-alive\n\ndata: x\n\n", ["x"]),
        ("event: message\nid: 3\nretry: 10\ndata: x\n\n", ["x"]),
        ("data: x\r\n\r\n", ["x"]),
        ("data: last", ["last"]),
        ("\n\n\n", []),
    ],
)
async def test_sse_data(stream: str, events: list[str]) -> None:
    assert await _events(stream) == events


async def test_sse_rejects_what_is_not_sse() -> None:
    with pytest.raises(BadStream, match="not a server-sent event field"):
        await _events('{"choices": []}\n\n')


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            '{"choices": [{"text": "ab", "token_ids": [1, 2], "finish_reason": null}]}',
            {"text": "ab", "token_ids": (1, 2), "finish_reason": None, "has_choice": True},
        ),
        ('{"choices": [{"text": "x"}]}', {"text": "x", "token_ids": None}),
        ('{"choices": [{"text": "", "finish_reason": "stop"}]}', {"finish_reason": "stop"}),
        (
            '{"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 3, '
            '"prompt_tokens_details": {"cached_tokens": 32}}}',
            {"has_choice": False, "prompt_tokens": 40, "cached_tokens": 32},
        ),
        ('{"choices": [], "usage": {"prompt_tokens": 4}}', {"cached_tokens": None}),
        ('{"choices": [{"content": "llama"}]}', {"text": "llama"}),
    ],
)
def test_parse_chunk(data: str, expected: dict[str, Any]) -> None:
    chunk = parse_chunk(data)
    for key, value in expected.items():
        assert getattr(chunk, key) == value


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ("not json", BadStream, "not JSON"),
        ("[1]", BadStream, "not a JSON object"),
        ('{"choices": {"a": 1}}', BadStream, "wrong shape"),
        ('{"choices": [{"text": 3}]}', BadStream, "wrong type"),
        ('{"error": {"message": "boom", "code": 500}}', RemoteEngineError, "stopped.*boom"),
    ],
)
def test_parse_chunk_errors(data: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        parse_chunk(data)


@pytest.mark.parametrize(
    ("url", "base", "shown"),
    [
        ("http://h:8000", "http://h:8000", "http://h:8000"),
        ("http://h:8000/", "http://h:8000", "http://h:8000"),
        ("https://h/v1", "https://h", "https://h"),
        ("https://user:secret@h/v1/", "https://user:secret@h", "https://h"),
    ],
)
def test_urls(url: str, base: str, shown: str) -> None:
    assert base_url(url) == base
    assert display_url(url) == shown


@pytest.mark.parametrize(
    ("sampling", "expected", "absent"),
    [
        (Sampling(), {"stream": True, "return_token_ids": True, "prompt": [1, 2]}, ["stop"]),
        (Sampling(stop=("\n",), seed=3), {"stop": ["\n"], "seed": 3}, ["allowed_token_ids"]),
        (Sampling(allowed_token_ids=(5, 6), max_tokens=1), {"allowed_token_ids": [5, 6]}, []),
        (Sampling(stop_token_ids=(0,)), {"stop_token_ids": [0]}, ["seed"]),
    ],
)
def test_completion_body(sampling: Sampling, expected: dict, absent: list[str]) -> None:
    body = completion_body("m", [1, 2], sampling)
    assert body["model"] == "m"
    assert body["stream_options"] == {"include_usage": True}
    for key, value in expected.items():
        assert body[key] == value
    for key in absent:
        assert key not in body
