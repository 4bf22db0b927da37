"""The engine process dies mid-session: requests are answered, it restarts by itself, and
completions resume without restarting the editor."""

from __future__ import annotations

import asyncio
import sys
import time

import psutil
import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import stats, wait_ready

pytestmark = pytest.mark.e2e

SERVER = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--kv-cache-gib", "1"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def ask(client: LanguageClient, uri: str) -> lsp.InlineCompletionList:
    return await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=1, character=12),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Invoked
            ),
        )
    )


async def test_engine_killed_restarts(client: LanguageClient) -> None:
    uri = "file:///work/restart.py"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="def add(a, b):\n    return a"
            )
        )
    )
    first = await ask(client, uri)
    assert len(first.items) == 1
    server = psutil.Process(client._server.pid)
    engine_core = [
        p
        for p in server.children(recursive=True)
        if "EngineCore" in p.name() or "EngineCore" in " ".join(p.cmdline())
    ]
    victims = engine_core or server.children(recursive=True)
    for p in victims:
        p.kill()
    # While it is down, requests are answered (empty), never left hanging.
    answered = await asyncio.wait_for(ask(client, uri), 30)
    assert isinstance(answered, lsp.InlineCompletionList)
    deadline = time.monotonic() + 300
    seen = set()
    while time.monotonic() < deadline:
        s = await stats(client)
        seen.add(s.state)
        if s.state == "ready" and s.restarts >= 1:
            break
        await asyncio.sleep(0.5)
    assert s.state == "ready" and s.restarts >= 1, (s.state, s.message)
    again = await ask(client, uri)
    assert [i.insert_text for i in again.items] == [i.insert_text for i in first.items]
    errors = [m for m in client.messages if m.type == lsp.MessageType.Error]
    assert len(errors) <= 1  # one short message, not a stream of them
