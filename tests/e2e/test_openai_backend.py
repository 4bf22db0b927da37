"""The real server over stdio on a remote engine: vLLM's OpenAI api_server serving the default
model, reached with `moe-lsp serve --engine-url`; the same completions as in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import httpx
import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.engine import Sampling
from moe_lsp.inference.openai_engine import OpenAIEngine

from . import test_server as in_process
from .conftest import stats, wait_ready

pytestmark = pytest.mark.e2e

API_READY_TIMEOUT = 600.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_model() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "moe_lsp.lsp.cli", "model", "path"], capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.skip("the default model is not prepared (moe-lsp model prepare)")
    return out.stdout.strip()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the api_server (it stops its engine processes in about 2 s); SIGKILL to its
    whole process group after 30 s, and to whatever of the group is left."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI api_server on a loopback port, serving the default model (CPU flags)."""
    model = _default_model()
    port = _free_port()
    log = tmp_path_factory.mktemp("api_server") / "server.log"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "4096",
        "--block-size",
        "32",
        "--enforce-eager",
        "--enable-prompt-tokens-details",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + API_READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"the api_server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the api_server did not start in time")
            time.sleep(1)
        yield url
    finally:
        _stop(proc)


@pytest_asyncio.fixture(
    scope="module", loop_scope="session", params=["server-tokenizer", "local-tokenizer"]
)
async def remote(api_server: str, request: pytest.FixtureRequest) -> AsyncIterator[LanguageClient]:
    """The real server over stdio with `serve --engine-url`, spoken to as VS Code; tokenizing
    through the api_server's /tokenize, or with the model folder's tokenizer.json (which has
    a vocabulary, so healed prompts get a constrained first token)."""
    command = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--engine-url", api_server]
    if request.param == "local-tokenizer":
        command += ["--engine-tokenizer", _default_model()]
    client = await ClientServerConfig(server_command=command).start(devtools=None)
    try:
        # The embedded model is prompted prefix-only, whichever engine serves it.
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                initialization_options={"completion": {"profile": "prefix-only"}},
            )
        )
        await wait_ready(client)
        yield client
        await client.shutdown_session()
    finally:
        await client.stop()


def running_on_server(url: str) -> float:
    """The api_server's own count of running requests (Prometheus /metrics)."""
    text = httpx.get(url + "/metrics", timeout=5).text
    found = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+]+)$", text, re.MULTILINE)
    return sum(float(v) for v in found)


async def test_remote_engine_is_reported(remote: LanguageClient) -> None:
    s = await stats(remote)
    assert s.state == "ready"
    assert s.engine.extra.backend == "openai"


# The in-process engine's tests, run as they are against the remote engine.


async def test_inline_completion_continues_the_code(remote: LanguageClient) -> None:
    await in_process.test_inline_completion_continues_the_code(remote)


@pytest.mark.parametrize(("text", "line", "character", "expected"), in_process.CASES)
async def test_inline_completion_at_several_positions(
    remote: LanguageClient, text: str, line: int, character: int, expected: str
) -> None:
    await in_process.test_inline_completion_at_several_positions(
        remote, text, line, character, expected
    )


async def test_completion_list_item(remote: LanguageClient) -> None:
    await in_process.test_completion_list_item(remote)


async def test_cancel_closes_the_stream(remote: LanguageClient, api_server: str) -> None:
    await in_process.test_cancel_aborts_the_engine_request(remote)
    for _ in range(50):
        if await asyncio.to_thread(running_on_server, api_server) == 0:
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(running_on_server, api_server) == 0, (
        "the api_server still runs the cancelled request"
    )


async def test_zz_counters(remote: LanguageClient) -> None:
    engine = (await stats(remote)).engine
    assert engine.requests == engine.finished + engine.aborted > 0
    assert engine.promptTokens > 0 and engine.generatedTokens > 0
    assert (engine.failed, engine.running) == (0, 0)


async def test_constrained_first_token_reports_its_id(api_server: str) -> None:
    """The api_server fields healing relies on: `allowed_token_ids` and `return_token_ids`."""
    engine = OpenAIEngine(EngineConfig.from_wire({"url": api_server}), "")
    await asyncio.to_thread(engine.start)
    try:
        assert engine.tokenizer is not None
        prompt = engine.tokenizer.encode("def add(a, b):\n    return a +")
        allowed = tuple(engine.tokenizer.encode(" b")[:1] + engine.tokenizer.encode(" c")[:1])
        sampling = Sampling(max_tokens=1, allowed_token_ids=allowed)
        async with aclosing(engine.stream("heal-check", prompt, sampling)) as deltas:
            got = [d async for d in deltas]
        ids = tuple(i for d in got for i in d.token_ids)
        assert len(ids) == 1 and ids[0] in allowed
        assert got[-1].finished and got[-1].finish_reason == "length"
        assert got[-1].cached_tokens is not None  # --enable-prompt-tokens-details
    finally:
        await asyncio.to_thread(engine.shutdown)
