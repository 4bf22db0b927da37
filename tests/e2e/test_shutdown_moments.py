"""Shutdown at every moment, over stdio with the real engine: answered at once, and the server
and every engine process gone within 10 s of `exit` (tests/bench/shutdown_probe.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.shutdown_probe import MOMENTS, probe

ANSWER_MS = 2000.0
"""`shutdown` is answered at once (VS Code waits 2 s for it, then kills the server)."""
GONE_MS = 10000.0
"""The server and its engine processes are gone this long after `exit` at most."""


@pytest.mark.parametrize("moment", [m for m in MOMENTS if m != "ready"])
def test_shutdown_at_any_moment(moment: str, tmp_path: Path) -> None:
    out = probe(moment, tmp_path / "server.log")
    assert out.shutdown_reply == {"jsonrpc": "2.0", "id": out.shutdown_reply["id"], "result": None}
    assert out.shutdown_answered_ms is not None and out.shutdown_answered_ms < ANSWER_MS
    assert out.exit_code == 0, out.as_dict()
    assert out.exit_sent_ms is not None and out.process_gone_ms is not None
    assert out.process_gone_ms - out.exit_sent_ms < GONE_MS, out.as_dict()
    assert out.processes_left == [], out.as_dict()
    assert out.engine_gone_ms is not None and out.engine_gone_ms - out.exit_sent_ms < GONE_MS
    assert out.unanswered == [], out.as_dict()
    assert "dictionary changed size" not in out.log_problems
    if moment != "initializing":
        assert out.engine_processes_seen > 0, "the moment came before the engine started"
