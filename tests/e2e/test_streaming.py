"""Hot streaks, partial results and the ghost-text stream against the real server and engine."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .conftest import stats
from .test_typing import inline_params

pytestmark = pytest.mark.e2e

BODY = (
    "def count_words(text):\n"
    "    counts = {}\n"
    "    for word in text.split():\n"
    "        if word in counts:\n"
    "            counts[word] += 1\n"
    "        else:\n"
    "            counts[word] = 1\n"
    "    return counts\n"
    "\n"
    "\n"
    "def count_chars(text):\n"
    "    counts = {}\n"
    "    for ch in text:\n"
    "        if ch in cou"
)


def open_doc(client: LanguageClient, text: str) -> str:
    uri = f"file:///work/streak_{uuid.uuid4().hex[:6]}.py"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    return uri


def insert(client: LanguageClient, uri: str, version: int, line: int, col: int, text: str) -> None:
    at = lsp.Position(line=line, character=col)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                lsp.TextDocumentContentChangePartial(range=lsp.Range(start=at, end=at), text=text)
            ],
        )
    )


async def settled(client: LanguageClient) -> Any:
    """moe/stats once no engine request runs (a streak generates after its answer)."""
    for _ in range(100):
        s = await stats(client)
        if s.engine.running == 0:
            return s
        await asyncio.sleep(0.1)
    raise AssertionError("engine requests still running")


async def test_accepted_line_then_enter_is_served_by_the_hot_streak(vscode: LanguageClient) -> None:
    uri = open_doc(vscode, BODY)
    line, col = 13, len("        if ch in cou")
    first = await vscode.text_document_inline_completion_async(inline_params(uri, line, col))
    assert len(first.items) == 1
    shown = first.items[0].insert_text
    assert shown == "nts:"  # the first line only (the engine goes on with the next ones)
    before = await settled(vscode)
    # Accept it: the editor inserts the text, then runs the item's command.
    insert(vscode, uri, 2, line, col, shown)
    command = first.items[0].command
    assert list(command.arguments) == [uri, "inline"]
    await vscode.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    )
    # Enter, and the editor's indentation for the body of the `if`.
    insert(vscode, uri, 3, line, col + len(shown), "\n            ")
    t0 = time.perf_counter()
    nxt = await vscode.text_document_inline_completion_async(inline_params(uri, line + 1, 12))
    elapsed = time.perf_counter() - t0
    after = await settled(vscode)
    assert len(nxt.items) == 1 and nxt.items[0].insert_text.strip()
    assert nxt.items[0].insert_text.startswith("counts[ch]")
    # Served from the streak: counted, and no new engine request was made for it.
    assert after.counts.from_streak - before.counts.from_streak == 1
    assert after.engine.requests == before.engine.requests
    assert after.counts.accepted - before.counts.accepted == 1
    print(f"next line from the streak in {elapsed * 1000:.1f} ms")
    # a client that accepts a word of it reports a partial accept: counted apart
    await vscode.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=command.command, arguments=[uri, "partial"])
    )
    partial = await stats(vscode)
    assert partial.counts.accepted_partially - after.counts.accepted_partially == 1
    assert partial.counts.accepted == after.counts.accepted


async def test_completion_list_sends_partial_results(vscode: LanguageClient) -> None:
    uri = open_doc(vscode, "def bubble_sort(items):\n    ")
    token = f"partial-{uuid.uuid4().hex[:6]}"
    partials: list[Any] = []
    features = vscode.protocol.fm.features
    default = features[lsp.PROGRESS]

    def progress(params: Any) -> None:
        if params.token == token:
            partials.append(params.value)
        else:
            default(params)

    features[lsp.PROGRESS] = progress
    try:
        result = await vscode.text_document_completion_async(
            lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=1, character=4),
                partial_result_token=token,
            )
        )
    finally:
        features[lsp.PROGRESS] = default
    assert partials, "no partial result came"
    items = [item for value in partials for item in value]
    assert all(item["textEdit"]["newText"].strip() for item in items)
    assert all(item["command"]["arguments"] == [uri, "list"] for item in items)
    # Partial results were sent, so the final answer holds no items (the client appends).
    assert isinstance(result, lsp.CompletionList) and len(result.items) == 0
    await settled(vscode)


async def test_ghost_text_stream_when_turned_on(vscode: LanguageClient) -> None:
    seen: list[Any] = []
    features = vscode.protocol.fm.features
    features["moe/ghostText"] = seen.append
    vscode.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"completion": {"streamGhostText": True}})
    )
    try:
        uri = open_doc(vscode, "def add(a, b):\n    return a")
        result = await vscode.text_document_inline_completion_async(inline_params(uri, 1, 12))
        await settled(vscode)
    finally:
        vscode.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings={"completion": {"streamGhostText": False}})
        )
        features.pop("moe/ghostText", None)
    mine = [p for p in seen if p.textDocument.uri == uri]
    assert mine, "no moe/ghostText notification"
    assert all(p.position.line == 1 and p.position.character == 12 for p in mine)
    assert mine[-1].done is True
    assert len(result.items) == 1
    assert result.items[0].insert_text.startswith(mine[0].text[:1] or result.items[0].insert_text)
