"""Shutdown at any moment, and no pygls copy of the documents: a protocol fed bodies directly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from moe_lsp.lsp.protocol import MoeProtocol

from .test_transport import Captured, note, req

URI = "file:///w/a.py"


def serve() -> tuple[MoeProtocol, Captured, dict[str, Any]]:
    """A protocol whose `initialized` handler waits (as one waiting for the client does) and
    whose document handlers note what they were given."""
    server = LanguageServer("lifecycle-test", "0", protocol_cls=MoeProtocol)
    seen: dict[str, Any] = {"opened": [], "changed": [], "closed": [], "never": None}

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: LanguageServer, params: Any) -> None:
        seen["never"] = asyncio.get_running_loop().create_future()
        await seen["never"]

    @server.feature("moe/wait")
    async def wait(ls: LanguageServer, params: Any) -> None:
        await asyncio.sleep(3600)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def opened(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        seen["opened"].append(params.text_document.text)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def changed(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        seen["changed"].append(params.content_changes[0].text)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def closed(ls: LanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        seen["closed"].append(params.text_document.uri)

    out = Captured()
    server.protocol.set_writer(out)
    assert isinstance(server.protocol, MoeProtocol)
    return server.protocol, out, seen


# (what runs when `shutdown` comes, expected answers to the other requests)
MOMENTS = [
    ("initialized waiting", []),
    ("initialized waiting, a request running", ["cancelled"]),
    ("two requests running", ["cancelled", "cancelled"]),
    ("nothing running", []),
]


@pytest.mark.parametrize(("moment", "others"), MOMENTS)
def test_shutdown_is_answered_at_any_moment(moment: str, others: list[str]) -> None:
    """pygls' lsp_shutdown iterated `_request_futures` while cancelling them removed entries:
    'dictionary changed size during iteration', an internal error, and exit code 1."""

    async def main() -> list[dict[str, Any]]:
        protocol, out, _ = serve()
        protocol.handle_body(req("initialize", {"capabilities": {}}, "init"))
        if moment.startswith("initialized"):
            protocol.handle_body(note("initialized", {}))
        for i in range(len(others)):
            protocol.handle_body(req("moe/wait", {}, f"w{i}"))
        await asyncio.sleep(0.01)
        protocol.handle_body(req("shutdown", None, "bye"))
        await asyncio.sleep(0.05)
        assert protocol._shutdown
        return out.messages

    messages = asyncio.run(main())
    replies = {m["id"]: m for m in messages if "id" in m and "method" not in m}
    assert replies["bye"] == {"jsonrpc": "2.0", "id": "bye", "result": None}
    for i, _ in enumerate(others):
        assert replies[f"w{i}"]["error"]["code"] == -32800  # RequestCancelled
    assert set(replies) == {"init", "bye", *(f"w{i}" for i in range(len(others)))}


def test_workspace_keeps_no_copy_of_documents() -> None:
    """pygls kept every opened document's text in its workspace, refused ones included; the
    session's store is the one copy. The handlers still get every notification."""

    async def main() -> tuple[MoeProtocol, dict[str, Any]]:
        protocol, _, seen = serve()
        protocol.handle_body(req("initialize", {"capabilities": {}}, "init"))
        item = {"uri": URI, "languageId": "python", "version": 1, "text": "x = 1\n" * 1000}
        protocol.handle_body(note("textDocument/didOpen", {"textDocument": item}))
        change = {
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}
        }
        protocol.handle_body(
            note(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": URI, "version": 2},
                    "contentChanges": [{**change, "text": "y"}],
                },
            )
        )
        protocol.handle_body(note("textDocument/didClose", {"textDocument": {"uri": URI}}))
        protocol.handle_body(note("textDocument/didOpen", {"textDocument": item}))
        await asyncio.sleep(0.01)
        return protocol, seen

    protocol, seen = asyncio.run(main())
    assert protocol.workspace.text_documents == {}
    assert len(seen["opened"]) == 2 and seen["changed"] == ["y"] and seen["closed"] == [URI]
