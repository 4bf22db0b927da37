"""`moe-lsp complete` (what `make demo` runs): the real server and engine print a completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.py"


def test_complete_prints_ghost_text_and_timings() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "moe_lsp.lsp.cli",
            "complete",
            str(SAMPLE),
            "--line",
            "15",
            "--column",
            "16",
            "--kv-cache-gib",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "no ghost text printed"
    assert "first completion: time to first token" in proc.stderr
    # the same place asked again is served from the first request's generation
    assert "same place again:" in proc.stderr and "(no engine request)" in proc.stderr
