"""What a request sees of the other open documents: their settled text, not every keystroke."""

from __future__ import annotations

import pytest

from moe_lsp.lsp import documents
from moe_lsp.lsp.service import Service
from moe_lsp.lsp.session import Session

A, B = "file:///w/a.py", "file:///w/b.py"


@pytest.mark.parametrize(
    ("typed_in_b", "quiet_seconds", "b_seen"),
    [
        ("", 0.0, "x = 1\n"),  # as opened
        ("y", 0.2, "x = 1\n"),  # typing in b: a's prompt keeps b's old text
        ("y", documents.SETTLE_SECONDS, "x = 1\ny"),  # b paused: its edit shows
    ],
)
def test_request_sees_other_documents_settled(
    monkeypatch: pytest.MonkeyPatch, typed_in_b: str, quiet_seconds: float, b_seen: str
) -> None:
    clock = [50.0]
    monkeypatch.setattr(documents.time, "monotonic", lambda: clock[0])
    server = Session(Service())
    server.documents.open(A, "python", 1, "def f():\n    ")
    server.documents.open(B, "python", 1, "x = 1\n")
    if typed_in_b:
        server.documents.change(B, 2, [(((1, 0), (1, 0)), typed_in_b)])
    clock[0] += quiet_seconds
    snap = server.snapshot(A, 1, 4)
    assert snap is not None
    request = server.request_for(snap)
    assert [(d.uri, d.text) for d in request.others] == [(B, b_seen)]
    assert server.documents.get(B).text == "x = 1\n" + typed_in_b  # the live text is intact
