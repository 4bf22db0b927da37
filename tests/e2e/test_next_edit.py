"""Next-edit suggestions end to end with the real engine: moe/nextEdit and ranged inline items."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from moe_lsp.prompts.soundness import error_count

from .conftest import stats
from .test_code_actions import apply
from .test_server import inline, open_doc

BEFORE = """def total(prices, tax):
    subtotal = sum(prices)
    shipping = 5
    return subtotal * tax + shipping


def report(prices):
    value = total(prices, 1.2)
    again = total(prices, 1.2)
    return value, again
"""
EDITED = BEFORE.replace("value = total(prices, 1.2)", "value = total(prices, 1.25)")


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def next_edit(client: LanguageClient, uri: str) -> object:
    return await client.protocol.send_request_async("moe/nextEdit", {"textDocument": {"uri": uri}})


async def test_next_edit_after_an_edit(vscode: LanguageClient) -> None:
    uri = open_doc(vscode, BEFORE, "next_edit.py")
    assert await next_edit(vscode, uri) is None  # no edit yet: nothing to follow
    before = (await stats(vscode)).engine.requests
    change(vscode, uri, 2, EDITED)
    found = await next_edit(vscode, uri)
    assert (await stats(vscode)).engine.requests > before  # the model was asked
    if found is None:
        return  # the default model proposed nothing (or nothing that parses)
    assert found.textDocument.uri == uri and found.textDocument.version == 2
    edit = lsp.TextEdit(
        range=lsp.Range(
            start=lsp.Position(line=found.range.start.line, character=found.range.start.character),
            end=lsp.Position(line=found.range.end.line, character=found.range.end.character),
        ),
        new_text=found.newText,
    )
    assert error_count("python", apply(EDITED, edit)) == 0


async def test_next_edit_for_an_unknown_document_is_null(vscode: LanguageClient) -> None:
    assert await next_edit(vscode, "file:///never/opened.py") is None


async def test_a_suggestion_on_the_cursor_line_comes_as_a_ranged_inline_item(
    vscode: LanguageClient,
) -> None:
    uri = open_doc(vscode, BEFORE, "next_edit_inline.py")
    change(vscode, uri, 2, EDITED)
    found = await next_edit(vscode, uri)
    if found is None or found.range.start.line != found.range.end.line:
        return  # nothing on one line to show inline
    line, character = found.range.start.line, 0
    items = await inline(vscode, uri, line, character)
    ranged = [i for i in items if i.range is not None and i.range.end.line == line]
    if items and not ranged:
        return  # ghost text came first
    for item in ranged:
        assert item.range.start == lsp.Position(line=line, character=character)
