"""Latest wins: one request in flight per document, and finished ones are not kept."""

from __future__ import annotations

import asyncio

from moe_lsp.lsp.service import Service
from moe_lsp.lsp.session import Session


async def test_claim_supersedes_and_releases() -> None:
    server = Session(Service())
    started = asyncio.Event()

    async def request(uri: str, hold: float) -> str:
        server.claim(uri)
        started.set()
        await asyncio.sleep(hold)
        return uri

    old = asyncio.ensure_future(request("file:///a.py", 10))
    await started.wait()
    new = asyncio.ensure_future(request("file:///a.py", 0))
    other = asyncio.ensure_future(request("file:///b.py", 0))
    assert await new == "file:///a.py" and await other == "file:///b.py"
    await asyncio.sleep(0)
    assert old.cancelled() and server.counts["superseded"] == 1
    # finished requests leave the table: it holds running requests only
    assert server.inflight == {}


async def test_many_documents_leave_nothing_behind() -> None:
    server = Session(Service())

    async def request(uri: str) -> None:
        server.claim(uri)
        await asyncio.sleep(0)

    await asyncio.gather(*(request(f"file:///{i}.py") for i in range(500)))
    await asyncio.sleep(0)
    assert len(server.inflight) == 0
