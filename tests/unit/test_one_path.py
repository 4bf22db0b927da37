"""An editor's inline request and an eval task on the same text run the same prompt."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from moe_lsp.lsp.handlers import on_inline
from moe_lsp.lsp.server import MoeLanguageServer
from tests.bench.eval_humaneval import complete_task
from tests.bench.humaneval_tasks import SINGLE, Task

from ..fakes import ScriptedEngine, ready_session

CASES = [
    # (document with the cursor as '|', what the engine writes)
    ("def add(a, b):\n    |\n", ["return", " a", " +", " b", "\n", "\n"]),
    ("def add(a, b):\n    return a |\n", [" +", " b", "\n"]),
    (
        "import os\n\n\ndef f(path):\n    if os.path.exists(path):\n        |",
        ["return", " 1", "\n"],
    ),
]


@pytest.mark.parametrize(("document", "pieces"), CASES)
async def test_inline_request_and_eval_task_send_the_same_prompt(tok, document, pieces) -> None:
    cursor = document.index("|")
    text = document.replace("|", "")
    task = Task("T/0 L1", "T/0", SINGLE, text, cursor, "", "", "f")

    # the eval: a session as the eval builds it, its root "/" as in the eval
    eval_engine = ScriptedEngine(pieces, tokenizer=tok)
    eval_session = ready_session(eval_engine)
    eval_session.root_path = "/"
    eval_outcome = await complete_task(eval_session, task)

    # the editor: the server's inline-completion handler on the same document
    editor_engine = ScriptedEngine(pieces, tokenizer=tok)
    ls = MoeLanguageServer()
    ls.session = ready_session(editor_engine)
    ls.session.root_path = "/"
    uri = f"file:///{task.path}"
    ls.session.documents.open(uri, "python", 1, text)
    doc = ls.session.documents.get(uri)
    assert doc is not None
    line, character = doc.position_at(cursor, ls.session.documents.encoding)
    params = lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=lsp.Position(line=line, character=character),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
    )
    answer = await on_inline(ls, params)

    assert len(eval_engine.requests) == len(editor_engine.requests) >= 1
    for (_, eval_ids, eval_sampling), (_, editor_ids, editor_sampling) in zip(
        eval_engine.requests, editor_engine.requests, strict=True
    ):
        assert eval_ids == editor_ids
        assert eval_sampling == editor_sampling
    shown = answer.items[0].insert_text if answer.items else ""
    assert shown == eval_outcome.text
    ls.session.close()
    eval_session.close()
