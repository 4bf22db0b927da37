"""Hundreds of requests and cancels a second: every request answered, nothing left running."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .conftest import stats

pytestmark = pytest.mark.e2e

TEXT = (
    "def parse(path):\n    with open(path) as fh:\n        return fh.read()\n\n\ndef main():\n    "
)


async def test_cancel_storm(vscode: LanguageClient) -> None:
    uri = f"file:///work/storm_{uuid.uuid4().hex[:6]}.py"
    vscode.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=TEXT)
        )
    )
    rng = random.Random(3)
    futures = []
    for i in range(300):
        msg_id = f"storm-{i}"
        method = rng.choice([lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.TEXT_DOCUMENT_COMPLETION])
        position = lsp.Position(line=rng.choice([2, 6]), character=rng.choice([4, 8, 24]))
        params = (
            lsp.InlineCompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=position,
                context=lsp.InlineCompletionContext(
                    trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
                ),
            )
            if method == lsp.TEXT_DOCUMENT_INLINE_COMPLETION
            else lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri), position=position
            )
        )
        futures.append(
            asyncio.ensure_future(vscode.protocol.send_request_async(method, params, msg_id))
        )
        if rng.random() < 0.7:
            vscode.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
        await asyncio.sleep(0.003)
    results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 120)
    # Every request got exactly one answer: a result or a cancellation error.
    for r in results:
        assert not isinstance(r, asyncio.TimeoutError)
        if isinstance(r, Exception):
            assert "cancel" in str(r).lower(), r
    for _ in range(100):
        s = await stats(vscode)
        if s.engine.running == 0:
            break
        await asyncio.sleep(0.1)
    assert s.engine.running == 0
    assert s.engine.extra.streams_open == 0
