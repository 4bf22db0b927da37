"""The real server over stdio, a real LSP client, the real vLLM engine and the default model."""

from __future__ import annotations

import ast
import asyncio
import uuid
from pathlib import Path

import psutil
import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .conftest import stats

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).parent.parent / "data" / "sample.py"


def open_doc(client: LanguageClient, text: str, name: str) -> str:
    uri = f"file:///work/{name}"
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    return uri


async def inline(client: LanguageClient, uri: str, line: int, character: int) -> list:
    result = await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=line, character=character),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    return result.items if isinstance(result, lsp.InlineCompletionList) else list(result or [])


def insert(text: str, line: int, character: int, new: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:character] + new + lines[line][character:]
    return "\n".join(lines)


async def test_inline_completion_continues_the_code(vscode: LanguageClient) -> None:
    text = SAMPLE.read_text()
    uri = open_doc(vscode, text, "sample.py")
    line = 14  # "    return n * "
    assert text.split("\n")[line] == "    return n * "
    items = await inline(vscode, uri, line, 15)
    assert len(items) == 1
    item = items[0]
    assert item.range.start == lsp.Position(line=line, character=15)
    assert "factorial(" in item.insert_text
    # The completed file is valid Python: the completion fits the line it continues.
    ast.parse(insert(text, line, 15, item.insert_text))


CASES = [
    # (document, line, character, what the completion must hold)
    ("def add(a, b):\n    return a", 1, 12, "b"),
    ("import os\n\n\ndef list_python_files(folder):\n    ", 4, 4, "os."),
    (
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
        "    def push(self, item):\n        self.items.",
        5,
        19,
        "append",
    ),
]


@pytest.mark.parametrize(("text", "line", "character", "expected"), CASES)
async def test_inline_completion_at_several_positions(
    vscode: LanguageClient, text: str, line: int, character: int, expected: str
) -> None:
    uri = open_doc(vscode, text, f"case_{uuid.uuid4().hex[:6]}.py")
    items = await inline(vscode, uri, line, character)
    assert items, "no completion"
    assert expected in items[0].insert_text
    assert items[0].insert_text.strip()


async def test_completion_list_item(vscode: LanguageClient) -> None:
    text = "def square(x):\n    return x * x\n\n\nprint(squ"
    uri = open_doc(vscode, text, "list.py")
    result = await vscode.text_document_completion_async(
        lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=4, character=9),
        )
    )
    assert isinstance(result, lsp.CompletionList)
    assert len(result.items) == 1
    item = result.items[0]
    assert item.label.startswith("squ")
    assert isinstance(item.text_edit, lsp.TextEdit)
    # The edit replaces the typed word "squ" and continues it.
    assert item.text_edit.range.start == lsp.Position(line=4, character=6)
    assert item.text_edit.new_text.startswith("square")


async def test_cancel_aborts_the_engine_request(vscode: LanguageClient) -> None:
    # An empty function body: a multi-line completion that takes a while to generate.
    text = "def parse_config(path):\n    "
    uri = open_doc(vscode, text, "cancel.py")
    before = (await stats(vscode)).counts.cancelled
    msg_id = f"cancel-{uuid.uuid4().hex[:6]}"
    fut = asyncio.ensure_future(
        vscode.protocol.send_request_async(
            lsp.TEXT_DOCUMENT_INLINE_COMPLETION,
            lsp.InlineCompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=1, character=4),
                context=lsp.InlineCompletionContext(
                    trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
                ),
            ),
            msg_id=msg_id,
        )
    )
    # Cancel once the engine is generating for this request.
    for _ in range(500):
        if (await stats(vscode)).engine.running > 0:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the request never reached the engine")
    vscode.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(fut, 30)
    for _ in range(50):
        s = await stats(vscode)
        if s.engine.running == 0:
            break
        await asyncio.sleep(0.1)
    assert s.engine.running == 0
    assert s.counts.cancelled == before + 1


LINE = '    print("😀 中文 ünï", na, sep="")'
DOC = f"def greet(name):\n{LINE}\n"


def column(enc: str, chars: int) -> int:
    piece = LINE[:chars]
    if enc == "utf-8":
        return len(piece.encode("utf-8"))
    return len(piece.encode("utf-16-le")) // 2


async def check_positions(client: LanguageClient, enc: str) -> None:
    cursor = LINE.index(", sep")  # just after "na"
    uri = open_doc(client, DOC, f"enc_{enc}.py")
    position = lsp.Position(line=1, character=column(enc, cursor))
    completion = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=position)
    )
    assert completion.items, "no completion"
    edit = completion.items[0].text_edit
    # The word being completed is "na": two characters, the same in every encoding.
    assert edit.range.start == lsp.Position(line=1, character=column(enc, cursor - 2))
    assert edit.range.end == position
    assert edit.new_text.startswith("name")


async def test_positions_utf16(vscode: LanguageClient) -> None:
    await check_positions(vscode, "utf-16")


async def test_positions_utf8(neovim: LanguageClient) -> None:
    await check_positions(neovim, "utf-8")


async def test_encodings_agree(vscode: LanguageClient, neovim: LanguageClient) -> None:
    got = []
    for client, enc in ((vscode, "utf-16"), (neovim, "utf-8")):
        uri = open_doc(client, DOC, f"agree_{enc}.py")
        cursor = LINE.index(", sep")
        items = await inline(client, uri, 1, column(enc, cursor))
        got.append(items[0].insert_text if items else "")
    assert got[0] == got[1]


async def test_loading_is_reported_as_progress(vscode: LanguageClient) -> None:
    reports = [r for rs in vscode.progress_reports.values() for r in rs]
    begins = [r for r in reports if isinstance(r, lsp.WorkDoneProgressBegin)]
    ends = [r for r in reports if isinstance(r, lsp.WorkDoneProgressEnd)]
    assert any(b.message == "Loading model ..." for b in begins)
    assert any(e.message and e.message.startswith("Model ready") for e in ends)


async def test_requests_before_ready_get_an_empty_answer(neovim: LanguageClient) -> None:
    result, state_after = neovim.moe_early
    assert state_after == "loading"
    assert isinstance(result, lsp.InlineCompletionList)
    assert len(result.items) == 0


async def test_zz_shutdown_leaves_no_process(neovim: LanguageClient) -> None:
    server = psutil.Process(neovim._server.pid)
    children = server.children(recursive=True)
    assert children, "the engine should run child processes"
    await neovim.shutdown_session()
    neovim.moe_shut_down = True
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {[p.pid for p in alive]}"
    assert neovim._server.returncode == 0
