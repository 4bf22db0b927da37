"""Memory and long lines over raw stdio: refused documents are not kept, and keystrokes on a
2.2-million-character line do not stall the server (no model needed: the engine is absent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .test_hostile import RawClient, notification

HUGE = "x = 1\n" * (17 * 1024 * 1024 // 6)
"""Over the 16 MiB limit: refused."""
LINE = 'var s="é😀中",t=1;' * 137_500
"""2.2 million characters on one line, not ASCII (an emoji is two UTF-16 units)."""


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RawClient]:
    # glibc: allocations over 1 MiB are mapped and returned when freed, so that RSS shows what
    # the server keeps, not what the allocator caches after 17 MiB messages went through.
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(1 << 20))
    client = RawClient.start(tmp_path / "server.log")
    client.initialize()
    client.alive()
    yield client
    client.close()


def rss_mib(client: RawClient) -> float:
    assert client.proc is not None
    return psutil.Process(client.proc.pid).memory_info().rss / 2**20


def test_refused_documents_are_not_kept(server: RawClient) -> None:
    """pygls kept its own copy of each, refused or not: 30 of them held 589 MB until closed.
    The first few warm up the allocator (a 17 MiB message passes through several buffers, and
    RSS climbs to a plateau); after them, refused documents must not add up."""

    def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            item = {"uri": f"file:///w/huge{i}.py", "languageId": "python", "version": 1}
            body = {"textDocument": {**item, "text": HUGE}}
            server.send(notification("textDocument/didOpen", body))
            server.alive()

    send(0, 8)
    warm = rss_mib(server)
    send(8, 24)
    grown = rss_mib(server) - warm
    assert grown < 24 * 17 / 2, f"RSS grew {grown:.0f} MiB for 24 more refused documents of 17 MiB"


def test_keystrokes_on_a_long_line_do_not_stall_the_server(server: RawClient) -> None:
    """Each keystroke took 0.35-1.4 s (pygls' workspace copy converted UTF-16 positions one
    character at a time, and so did the store), and nothing else was answered meanwhile."""
    uri = "file:///w/app.min.js"
    item = {"uri": uri, "languageId": "javascript", "version": 1, "text": LINE}
    server.send(notification("textDocument/didOpen", {"textDocument": item}))
    server.alive()
    column = len(LINE.encode("utf-16-le")) // 2 // 2
    t0 = time.monotonic()
    for k in range(40):
        at = {"line": 0, "character": column + k}
        change = {"range": {"start": at, "end": at}, "text": "k"}
        server.send(
            notification(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": k + 2}, "contentChanges": [change]},
            )
        )
    server.alive()  # answered after the 40 keystrokes were applied
    took = time.monotonic() - t0
    assert took < 8.0, f"40 keystrokes took {took:.1f} s"
