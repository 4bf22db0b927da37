"""The server is killed outright (SIGKILL, as an editor or the OOM killer may do): the engine
processes it started end by themselves instead of holding the model in memory for good."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from lsprotocol import types as lsp

from moe_lsp.lsp.demo import quiet_client

from .conftest import SERVER, wait_ready

pytestmark = pytest.mark.e2e


async def test_engine_processes_end_when_the_server_is_killed() -> None:
    client = quiet_client()

    await client.start_server(SERVER, open(os.devnull, "wb"))
    assert client._server is not None
    server = psutil.Process(client._server.pid)
    engine: list[psutil.Process] = []
    try:
        await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
        client.initialized(lsp.InitializedParams())
        await wait_ready(client)  # type: ignore[arg-type]
        engine = [p for p in server.children(recursive=True) if p.name().startswith("VLLM")]
        assert engine, "the engine should run in child processes"
        os.kill(server.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(engine, timeout=60)
        assert not alive, f"left running after the server was killed: {[p.pid for p in alive]}"
    finally:
        for p in [server, *engine]:
            try:
                p.kill()
            except psutil.Error:
                pass
        await client.stop()
