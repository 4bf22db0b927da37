"""A server given a model folder that does not exist: one clear message, and it keeps answering."""

from __future__ import annotations

import asyncio
import sys

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import stats

pytestmark = pytest.mark.e2e

MISSING = "/nonexistent/moe-lsp-model"


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--model", MISSING]
    )
)
async def broken(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


async def test_missing_model_folder(broken: LanguageClient) -> None:
    for _ in range(600):
        s = await stats(broken)
        if s.state not in ("stopped", "loading"):
            break
        await asyncio.sleep(0.1)
    assert s.state == "failed"
    assert MISSING in s.message
    assert "moe-lsp model prepare" in s.message
    errors = [m for m in broken.messages if m.type == lsp.MessageType.Error]
    assert len(errors) == 1
    assert "\n" not in errors[0].message and "Traceback" not in errors[0].message

    uri = "file:///work/x.py"
    broken.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="x = "
            )
        )
    )
    result = await broken.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=0, character=4),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(result, lsp.InlineCompletionList)
    assert len(result.items) == 0
