"""The remote engine against a tiny loopback HTTP server: streaming, cancelling, and the
user's message for each way a server can fail."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.engine import Delta, EngineState, Sampling
from moe_lsp.inference.errors import InferenceError
from moe_lsp.inference.openai_engine import API_KEY_ENV, OpenAIEngine

# -- a loopback server -----------------------------------------------------------------------

Handler = Callable[["Req"], Any]


@dataclass
class Req:
    """A request the fake server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fake:
    """A tiny HTTP/1.1 server on 127.0.0.1 in a thread of its own; routes answer with
    (status, json) or (status, [SSE lines], delay)."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Req] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            first, *lines = head.decode().split("\r\n")
            method, path, _ = first.split(" ")
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
            raw = await reader.readexactly(int(headers.get("content-length", 0)))
            req = Req(method, path, headers, json.loads(raw) if raw else None)
            self.requests.append(req)
            handler = self.routes.get(path)
            answer = handler(req) if handler else (404, {"error": {"message": "Not Found"}})
            if answer is None:  # never answer
                await asyncio.sleep(3600)
            status, payload, *rest = answer
            if isinstance(payload, list):
                await self._stream(reader, writer, status, payload, rest[0] if rest else 0.0)
            else:
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Connection: close\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        lines: list[str],
        delay: float,
    ) -> None:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: text/event-stream\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        eof = asyncio.ensure_future(reader.read(1))
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            if delay:
                done, _ = await asyncio.wait([eof], timeout=delay)
                if done:
                    self.disconnected.append(self.requests[-1].path)
                    return
        eof.cancel()

    @contextmanager
    def running(self) -> Iterator[Fake]:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                with contextlib.suppress(asyncio.CancelledError):
                    await server.serve_forever()

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        started.wait(5)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
            thread.join(5)


def sse(*chunks: dict, done: bool = True) -> list[str]:
    lines = [f"data: {json.dumps(c)}\n" for c in chunks]
    return lines + (["data: [DONE]\n"] if done else [])


def tok_chunk(text: str, ids: list[int], finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "text": text, "token_ids": ids, "finish_reason": finish}]}


USAGE = {
    "choices": [],
    "usage": {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}},
}


def vllm_like(completion: Callable[[Req], Any]) -> dict[str, Handler]:
    """Routes of a vLLM api_server whose /v1/completions answers with `completion`."""
    return {
        "/v1/models": lambda r: (200, {"object": "list", "data": [{"id": "served"}]}),
        "/tokenize": lambda r: (
            (400, {"error": {"message": "chat"}})
            if "messages" in r.body
            else (200, {"tokens": [ord(c) for c in r.body["prompt"]], "count": 1})
        ),
        "/detokenize": lambda r: (200, {"prompt": "".join(chr(i) for i in r.body["tokens"])}),
        "/tokenizer_info": lambda r: (
            200,
            {"tokenizer_class": "X", "added_tokens_decoder": {"0": {"content": "<fim_prefix>"}}},
        ),
        "/v1/completions": completion,
    }


def engine_for(url: str, **wire: Any) -> OpenAIEngine:
    return OpenAIEngine(EngineConfig.from_wire({"url": url, **wire}), "")


async def collect(engine: OpenAIEngine, rid: str = "r1") -> list[Delta]:
    async with aclosing(engine.stream(rid, [1, 2, 3], Sampling(max_tokens=8))) as deltas:
        return [d async for d in deltas]


async def test_start_and_stream() -> None:
    chunks = sse(tok_chunk("de", [100, 101]), tok_chunk("f", [102], "stop"), USAGE)
    with Fake(vllm_like(lambda r: (200, chunks))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
        assert engine.health().state is EngineState.READY
        assert engine.model == "served"
        assert engine.tokenizer is not None
        assert engine.tokenizer.encode("ab") == [97, 98]
        assert engine.tokenizer.decode([97, 98]) == "ab"
        assert engine.tokenizer.token_id("a") == 97
        assert "<fim_prefix>" in engine.tokenizer.special_tokens
        assert engine.chat_template is None  # the fake renders no chat
        deltas = await collect(engine)
        body = fake.requests[-1].body
    assert [d.text for d in deltas] == ["de", "f"]
    assert [d.token_ids for d in deltas] == [(100, 101), (102,)]
    assert deltas[-1].finished and deltas[-1].finish_reason == "stop"
    assert deltas[-1].cached_tokens == 2
    assert body["prompt"] == [1, 2, 3] and body["model"] == "served"
    s = engine.stats()
    assert (s.requests, s.finished, s.aborted, s.generated_tokens) == (1, 1, 0, 3)
    assert (s.cached_prompt_tokens, s.running) == (2, 0)


async def test_closing_the_stream_closes_the_connection() -> None:
    chunks = sse(*[tok_chunk("x", [1]) for _ in range(200)])
    with Fake(vllm_like(lambda r: (200, chunks, 0.02))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
        async with aclosing(engine.stream("r", [1], Sampling())) as deltas:
            async for _ in deltas:
                assert engine.stats().running == 1
                break
        for _ in range(100):
            if fake.disconnected:
                break
            await asyncio.sleep(0.02)
        assert fake.disconnected == ["/v1/completions"]
    s = engine.stats()
    assert (s.running, s.aborted, s.finished) == (0, 1, 0)


async def test_abort_by_id_closes_the_connection() -> None:
    chunks = sse(*[tok_chunk("x", [1]) for _ in range(200)])
    with Fake(vllm_like(lambda r: (200, chunks, 0.02))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
        got: list[Delta] = []

        async def read() -> None:
            got.extend(await collect(engine, "victim"))

        task = asyncio.ensure_future(read())
        while not got and engine.stats().running == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        await engine.abort("victim")
        await asyncio.wait_for(task, 5)  # ends quietly, not with an error
        for _ in range(100):
            if fake.disconnected:
                break
            await asyncio.sleep(0.02)
        assert fake.disconnected == ["/v1/completions"]
    assert engine.stats().aborted == 1 and engine.stats().failed == 0


async def test_api_key_is_sent_and_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-very-secret")
    caplog.set_level(logging.DEBUG)
    chunks = sse(tok_chunk("x", [1], "length"), USAGE)
    with Fake(vllm_like(lambda r: (200, chunks))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
        await collect(engine)
        auth = {r.headers.get("authorization") for r in fake.requests}
    assert auth == {"Bearer sk-very-secret"}
    assert "sk-very-secret" not in caplog.text


async def test_api_key_file(tmp_path: Any) -> None:
    key = tmp_path / "key"
    key.write_text("from-file\n")
    with Fake(vllm_like(lambda r: (200, []))).running() as fake:
        engine = engine_for(fake.url, apiKeyFile=str(key))
        await asyncio.to_thread(engine.start)
        assert fake.requests[0].headers["authorization"] == "Bearer from-file"


def _refused_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("routes", "wire", "message"),
    [
        (None, {}, "Cannot connect to the inference server at http://127.0.0.1:.*is it running"),
        (
            {"/v1/models": lambda r: (401, {"error": {"message": "Unauthorized"}})},
            {},
            r"refused the API key \(HTTP 401\).*apiKeyFile",
        ),
        ({}, {}, r"has no /v1/models \(HTTP 404.*check engine.url"),
        (
            {"/v1/models": lambda r: (200, {"data": [{"id": "a"}]})},
            {"model": "b"},
            "does not serve 'b'; it serves: a",
        ),
        (
            {"/v1/models": lambda r: (200, {"data": []})},
            {},
            "lists no model",
        ),
        (
            {"/v1/models": lambda r: (200, {"data": [{"id": "a"}]})},
            {},
            r"cannot tokenize \(no /tokenize\); set engine.tokenizer",
        ),
        ({"/v1/models": lambda r: None}, {"readTimeout": 0.3}, "sent nothing for 0.3 s"),
        (
            {"/v1/models": lambda r: (200, {"data": [{"id": "a"}]})},
            {"tokenizer": "/nonexistent"},
            "engine.tokenizer folder /nonexistent has no tokenizer.json",
        ),
        ({}, {"apiKeyFile": "/nonexistent/key"}, "engine.apiKeyFile /nonexistent/key cannot"),
    ],
)
async def test_start_errors(routes: dict | None, wire: dict, message: str) -> None:
    if routes is None:
        engine = engine_for(_refused_url(), **wire)
        with pytest.raises(InferenceError, match=message):
            await asyncio.to_thread(engine.start)
        assert engine.health().state is EngineState.FAILED
        return
    with Fake(routes).running() as fake:
        engine = engine_for(fake.url, **wire)
        with pytest.raises(InferenceError, match=message):
            await asyncio.to_thread(engine.start)
    assert engine.health().state is EngineState.FAILED
    assert engine.health().message


@pytest.mark.parametrize(
    ("completion", "wire", "message"),
    [
        (
            lambda r: (401, {"error": {"message": "bad key"}}),
            {},
            r"refused the API key \(HTTP 401\) for /v1/completions",
        ),
        (
            lambda r: (404, {"error": {"message": "The model `served` does not exist."}}),
            {},
            r"has no /v1/completions \(HTTP 404: The model `served` does not exist\.\)",
        ),
        (
            lambda r: (400, {"error": {"message": "max_tokens too large"}}),
            {},
            r"failed /v1/completions \(HTTP 400: max_tokens too large\)",
        ),
        (
            lambda r: (200, ["data: {not json\n"]),
            {},
            "sent a stream that is not OpenAI server-sent events: data that is not JSON",
        ),
        (
            lambda r: (200, ["<html>\n"]),
            {},
            "not OpenAI server-sent events: a line that is not a server-sent event",
        ),
        (
            lambda r: (200, sse(tok_chunk("x", [1]), done=False)),
            {},
            "ended before the completion finished",
        ),
        (
            lambda r: (200, sse({"error": {"message": "engine dead", "code": 500}})),
            {},
            "stopped the completion: engine dead",
        ),
        (lambda r: None, {"readTimeout": 0.3}, "sent nothing for 0.3 s during a completion"),
    ],
)
async def test_stream_errors(completion: Handler, wire: dict, message: str) -> None:
    with Fake(vllm_like(completion)).running() as fake:
        engine = engine_for(fake.url, **wire)
        await asyncio.to_thread(engine.start)
        with pytest.raises(InferenceError, match=message):
            await collect(engine)
    s = engine.stats()
    assert (s.failed, s.running) == (1, 0)


async def test_lost_server_makes_the_engine_unhealthy() -> None:
    with Fake(vllm_like(lambda r: (200, []))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
    engine._base = _refused_url()  # the server went away
    with pytest.raises(InferenceError, match="Cannot connect"):
        await collect(engine)
    assert engine.health().state is EngineState.FAILED
    assert "Lost the inference server" in engine.health().message


@pytest.mark.parametrize("in_thread", [True, False])
async def test_shutdown_from_a_thread_or_the_loop(in_thread: bool) -> None:
    chunks = sse(tok_chunk("x", [1], "stop"), USAGE)
    with Fake(vllm_like(lambda r: (200, chunks))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
        await collect(engine)
        client = engine._client
        assert client is not None
        if in_thread:
            await asyncio.wait_for(asyncio.to_thread(engine.shutdown), 5)
        else:
            engine.shutdown()
            await asyncio.sleep(0.05)
    assert client.is_closed
    assert engine.health().state is EngineState.STOPPED


async def test_tokenizer_that_loses_the_server_makes_the_engine_unhealthy() -> None:
    with Fake(vllm_like(lambda r: (200, []))).running() as fake:
        engine = engine_for(fake.url)
        await asyncio.to_thread(engine.start)
    assert engine.tokenizer is not None
    engine.tokenizer._base = _refused_url()  # type: ignore[attr-defined]
    with pytest.raises(InferenceError, match="Cannot connect"):
        engine.tokenizer.encode("something new")
    assert engine.health().state is EngineState.FAILED
