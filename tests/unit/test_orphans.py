"""A process spawned by the server ends when the server is killed (no orphaned engine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from moe_lsp.lsp.orphans import is_spawned_child


@pytest.mark.parametrize(
    ("orig_argv", "expected"),
    [
        (
            [
                "python",
                "-B",
                "-c",
                "from multiprocessing.spawn import spawn_main",
                "--multiprocessing-fork",
            ],
            True,
        ),
        (["python", "-m", "moe_lsp.lsp.cli", "serve"], False),
        (["/venv/bin/moe-lsp", "serve"], False),
        (["python", "-c", "from multiprocessing.resource_tracker import main;main(5)"], False),
    ],
)
def test_is_spawned_child(orig_argv: list[str], expected: bool) -> None:
    assert is_spawned_child(orig_argv) is expected


PARENT = textwrap.dedent(
    """
    import multiprocessing, sys, time

    def child():
        import os
        from moe_lsp.lsp.orphans import exit_with_parent
        exit_with_parent(poll=0.1, grace=2.0)
        print(os.getpid(), flush=True)  # watching from now on
        time.sleep(600)

    if __name__ == "__main__":
        multiprocessing.get_context("spawn").Process(target=child).start()
        time.sleep(600)
    """
)


def test_spawned_process_ends_when_its_parent_is_killed(tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        assert child.is_running()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs([child], timeout=20)
        assert not alive, f"the spawned process outlived its parent: {[p.status() for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
