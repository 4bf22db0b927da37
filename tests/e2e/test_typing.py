"""A scripted typist against the real server and engine: every request answered, older ones
superseded, typing through the ghost text served from the cache, nothing left running."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .conftest import stats

pytestmark = pytest.mark.e2e

START = "def fibonacci(n):\n    if n < 2:\n        return n\n    "
TYPED = "return fibonacci(n - 1) + fib"


def inline_params(uri: str, line: int, character: int) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=lsp.Position(line=line, character=character),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
    )


def type_char(client: LanguageClient, uri: str, version: int, line: int, col: int, ch: str):
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(
                        start=lsp.Position(line=line, character=col),
                        end=lsp.Position(line=line, character=col),
                    ),
                    text=ch,
                )
            ],
        )
    )


async def test_typing_replay(vscode: LanguageClient) -> None:
    uri = f"file:///work/typing_{uuid.uuid4().hex[:6]}.py"
    vscode.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=START)
        )
    )
    before = (await stats(vscode)).counts
    line, col, version = 3, 4, 1
    pending = []
    for ch in TYPED:
        version += 1
        type_char(vscode, uri, version, line, col, ch)
        col += 1
        pending.append(
            asyncio.ensure_future(
                vscode.protocol.send_request_async(
                    lsp.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, line, col)
                )
            )
        )
        await asyncio.sleep(0.08)  # a fast typist: 12 characters a second
    results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 60)
    answered = [r for r in results if isinstance(r, lsp.InlineCompletionList)]
    cancelled = [r for r in results if isinstance(r, Exception) and "cancel" in str(r).lower()]
    assert len(answered) + len(cancelled) == len(TYPED)  # every request got exactly one answer
    final = results[-1]
    assert isinstance(final, lsp.InlineCompletionList) and len(final.items) == 1
    ghost = final.items[0].insert_text
    assert ghost.startswith("onacci(n - 2)")

    # Type the first characters of the ghost text: the rest comes from the running streak or
    # the typing cache, without a new engine request.
    mid = await stats(vscode)
    for k in range(1, 4):
        version += 1
        type_char(vscode, uri, version, line, col, ghost[k - 1])
        col += 1
        again = await vscode.text_document_inline_completion_async(inline_params(uri, line, col))
        assert [i.insert_text for i in again.items] == [ghost[k:]]
    # The editor runs the item's command when the user accepts it: counted locally.
    assert final.items[0].command.command == "moe-lsp.accepted"
    await vscode.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=final.items[0].command.command)
    )
    after = await stats(vscode)
    assert after.counts.accepted - before.accepted == 1
    assert after.latencyMs.total.count >= 1
    assert after.latencyMs.first_token.p50 > 0
    served = after.counts.from_cache + after.counts.from_streak
    assert served - (mid.counts.from_cache + mid.counts.from_streak) == 3
    assert after.engine.requests == mid.engine.requests
    # Requests overtaken by newer keystrokes were superseded, not left to run.
    assert after.counts.superseded - before.superseded >= len(cancelled)
    for _ in range(50):
        if (await stats(vscode)).engine.running == 0:
            break
        await asyncio.sleep(0.1)
    assert (await stats(vscode)).engine.running == 0
