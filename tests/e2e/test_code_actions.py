"""Code actions end to end: listed at once, resolved by the real engine into edits that parse."""

from __future__ import annotations

import time

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from moe_lsp.prompts.soundness import error_count

from .test_server import open_doc

STUB = '''def is_even(n):
    """Return True when n is even."""
    pass


def shout(text):
    return text.upper() + "!"
'''


def apply(text: str, edit: lsp.TextEdit) -> str:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    a = offsets[edit.range.start.line] + edit.range.start.character
    b = offsets[edit.range.end.line] + edit.range.end.character
    return text[:a] + edit.new_text + text[b:]


async def actions_at(
    client: LanguageClient, uri: str, line: int, character: int, diagnostics=()
) -> list[lsp.CodeAction]:
    at = lsp.Range(
        start=lsp.Position(line=line, character=character),
        end=lsp.Position(line=line, character=character),
    )
    t0 = time.perf_counter()
    result = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=at,
            context=lsp.CodeActionContext(diagnostics=list(diagnostics)),
        )
    )
    assert time.perf_counter() - t0 < 5, "listing must not wait for the model"
    return [a for a in result or [] if isinstance(a, lsp.CodeAction)]


async def test_actions_are_offered_only_where_they_apply(vscode: LanguageClient) -> None:
    uri = open_doc(vscode, STUB, "actions_offer.py")
    in_stub = {a.title for a in await actions_at(vscode, uri, 2, 4)}
    assert in_stub == {"moe-lsp: Implement is_even"}  # it has a docstring already
    in_shout = {a.title for a in await actions_at(vscode, uri, 6, 8)}
    assert in_shout == {"moe-lsp: Write a docstring for shout"}  # its body is not a stub
    outside = await actions_at(vscode, uri, 4, 0)
    assert outside == []
    for action in await actions_at(vscode, uri, 2, 4):
        assert action.edit is None and action.data is not None  # resolved lazily


@pytest.mark.parametrize(("line", "title"), [(2, "Implement is_even"), (6, "Write a docstring")])
async def test_an_action_resolves_to_an_edit_that_parses_and_applies(
    vscode: LanguageClient, line: int, title: str
) -> None:
    uri = open_doc(vscode, STUB, f"actions_resolve_{line}.py")
    (action,) = [a for a in await actions_at(vscode, uri, line, 4) if title in a.title]
    try:
        resolved = await vscode.code_action_resolve_async(action)
    except Exception as err:  # a refusal must be one clear sentence
        message = str(err)
        assert "Traceback" not in message
        pytest.skip(f"the default model's edit was refused: {message}")
    assert resolved.edit is not None and resolved.edit.document_changes
    (change,) = resolved.edit.document_changes
    assert isinstance(change, lsp.TextDocumentEdit)
    assert change.text_document.version == 1  # made for the version it was offered on
    (edit,) = change.edits
    new = apply(STUB, edit)
    assert new != STUB
    assert error_count("python", new) == 0


async def test_a_fix_for_a_diagnostic_from_another_server(vscode: LanguageClient) -> None:
    text = "def area(r):\n    return 3.14 * r ** 2 +\n"
    uri = open_doc(vscode, text, "actions_fix.py")
    problem = lsp.Diagnostic(
        range=lsp.Range(
            start=lsp.Position(line=1, character=4), end=lsp.Position(line=1, character=26)
        ),
        message="Expected expression",
        source="pyright",
    )
    actions = await actions_at(vscode, uri, 1, 10, [problem])
    fixes = [a for a in actions if a.kind == lsp.CodeActionKind.QuickFix]
    assert [a.title for a in fixes] == ["moe-lsp: Fix: Expected expression"]
    assert fixes[0].diagnostics and fixes[0].diagnostics[0].message == "Expected expression"


async def test_a_stale_action_is_refused_with_a_clear_message(vscode: LanguageClient) -> None:
    uri = open_doc(vscode, STUB, "actions_stale.py")
    (action,) = [a for a in await actions_at(vscode, uri, 2, 4) if "Implement" in a.title]
    vscode.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=STUB + "\n")],
        )
    )
    with pytest.raises(Exception, match="changed since this action was offered"):
        await vscode.code_action_resolve_async(action)
