"""Settings over stdio, no model needed: bad values from the config file, initializationOptions
and workspace/configuration each get one warning (shown and logged) and the server answers."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.e2e

MISSING = "/nonexistent/moe-lsp-model"
CONFIG = Path(tempfile.mkdtemp(prefix="moe-lsp-conf-")) / "config.toml"
CONFIG.write_text("[completion]\nhotStreakTokens = -1\nmaxTokensMulti = 64\n")


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--model", MISSING],
        server_env={**os.environ, "MOE_LSP_CONFIG": str(CONFIG)},
    )
)
async def client(lsp_client: LanguageClient):
    lsp_client.set_configuration(
        {"moe": {"completion": {"maxTokensSingle": 7, "timeoutSeconds": "soon"}}}
    )
    options = {"logPrompts": "false", "completion": {"debounceFloorMs": "abc"}}
    await lsp_client.initialize_session(
        lsp.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options=options,
        )
    )
    yield
    await lsp_client.shutdown_session()


def shown(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == lsp.MessageType.Warning]


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    for _ in range(int(timeout * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_each_bad_value_is_one_warning_and_requests_are_answered(
    client: LanguageClient,
) -> None:
    # initializationOptions: a string is never a boolean; "abc" is no number
    # config file: a value out of range; workspace/configuration (pulled): a string for a number
    await until(lambda: any("timeoutSeconds" in m for m in shown(client)))
    warnings = shown(client)
    assert len([m for m in warnings if 'logPrompts = "false" was not applied' in m]) == 1
    assert len([m for m in warnings if 'debounceFloorMs = "abc" was not applied' in m]) == 1
    assert len([m for m in warnings if "hotStreakTokens = -1 was not applied" in m]) == 1
    assert str(CONFIG) in next(m for m in warnings if "hotStreakTokens" in m)
    assert len([m for m in warnings if 'timeoutSeconds = "soon" was not applied' in m]) == 1
    logged = [m.message for m in client.log_messages if m.type == lsp.MessageType.Warning]
    assert any("debounceFloorMs" in m for m in logged)  # window/logMessage too

    # a change without settings makes the server pull them again; the pulled 7 took effect
    client.set_configuration({"moe": {"completion": {"maxTokensSingle": "many"}}})
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    await until(lambda: any("maxTokensSingle" in m for m in shown(client)))
    told = next(m for m in shown(client) if "maxTokensSingle" in m)
    assert told.endswith("keeping 7.")

    uri = "file:///work/x.py"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="x = "
            )
        )
    )
    result = await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=0, character=4),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(result, lsp.InlineCompletionList)
