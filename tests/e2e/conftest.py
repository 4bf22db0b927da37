"""End-to-end fixtures: the real server over stdio, spoken to by pytest-lsp clients, real engine."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from typing import Any

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

# $MOE_LSP_E2E_ARGS replaces the engine flags (make gpu-check: another model, on a GPU).
SERVER = [
    sys.executable,
    "-m",
    "moe_lsp.lsp.cli",
    "serve",
    *shlex.split(os.environ.get("MOE_LSP_E2E_ARGS", "--kv-cache-gib 1")),
]
READY_TIMEOUT = 900.0


async def stats(client: LanguageClient) -> Any:
    """The server's moe/stats answer."""
    return await client.protocol.send_request_async("moe/stats", {})


async def wait_ready(client: LanguageClient, timeout: float = READY_TIMEOUT) -> Any:
    """Poll moe/stats until the engine is ready; fail with the server's message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = await stats(client)
        if s.state == "ready":
            return s
        if s.state == "failed":
            raise AssertionError(f"engine failed to start: {s.message}")
        await asyncio.sleep(0.5)
    raise AssertionError("engine not ready in time")


async def start(client: LanguageClient, spec: str) -> None:
    await client.initialize_session(lsp.InitializeParams(capabilities=client_capabilities(spec)))
    await wait_ready(client)


@pytest_lsp.fixture(scope="session", config=ClientServerConfig(server_command=SERVER))
async def vscode(lsp_client: LanguageClient):
    """A server whose client speaks as VS Code (UTF-16 positions only)."""
    await start(lsp_client, "visual-studio-code")
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="session", config=ClientServerConfig(server_command=SERVER))
async def neovim(lsp_client: LanguageClient):
    """A second server whose client speaks as Neovim 0.11 (offers UTF-8 positions first)."""
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=client_capabilities("neovim"))
    )
    # Ask at once, while the model is loading: the answer is empty and does not wait for it.
    uri = "file:///work/early.py"
    lsp_client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="def f():\n    "
            )
        )
    )
    result = await lsp_client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=1, character=4),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    lsp_client.moe_early = (result, (await stats(lsp_client)).state)
    await wait_ready(lsp_client)
    yield
    if not getattr(lsp_client, "moe_shut_down", False):
        await lsp_client.shutdown_session()
