"""Routed experts from the real engine: moe/experts after a completion, `moe-lsp experts`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.e2e


async def test_moe_experts_counts_the_tokens_of_a_completion(vscode: LanguageClient) -> None:
    uri = "file:///work/experts.py"
    text = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    "
    vscode.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    before = await vscode.protocol.send_request_async("moe/experts", {})
    tokens_before = before.tokens if before.available else 0
    await vscode.text_document_completion_async(
        lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=5, character=4),
        )
    )
    await asyncio.sleep(1.0)  # the counts are taken when the engine request ends
    body = await vscode.protocol.send_request_async("moe/experts", {})
    assert body.available, body
    assert body.experts == 4 and len(body.layers) == 30
    assert body.tokens > tokens_before  # the prompt and the completion went through the gates
    for layer in body.layers:
        assert sum(layer.tokens) == body.tokens  # top-1: every token goes to one expert a layer
        assert 0.25 <= layer.jain <= 1.0 and 1.0 <= layer.maxOverMean <= 4.0


def test_experts_cli_replay_writes_the_heatmap(tmp_path: Path) -> None:
    png, out = tmp_path / "h.png", tmp_path / "e.json"
    cmd = [sys.executable, "-m", "moe_lsp.lsp.cli", "experts", "--replay", "--limit", "2"]
    done = subprocess.run(
        [*cmd, "--heatmap", str(png), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(out.read_text())
    assert body["available"] and body["tokens"] > 0
    assert "max/mean" in done.stdout and f"heatmap: {png}" in done.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"
