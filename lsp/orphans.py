"""Owns the engine processes' end when the server dies without stopping them (a parent watch)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""How often a spawned process checks that its parent is still there."""
GRACE_SECONDS = 10.0
"""Time given to a clean exit (SIGTERM) before the process ends itself at once."""


def is_spawned_child(orig_argv: list[str] | None = None) -> bool:
    """True in a process started by multiprocessing's spawn (vLLM's engine core, its workers).

    Read from the interpreter's own command line: spawn replaces `sys.argv` with the parent's."""
    return "--multiprocessing-fork" in (sys.orig_argv if orig_argv is None else orig_argv)


def exit_with_parent(poll: float = POLL_SECONDS, grace: float = GRACE_SECONDS) -> threading.Thread:
    """Watch the parent process from a daemon thread; once it is gone (killed, crashed), end
    this process: SIGTERM first, so that vLLM frees its shared memory, then for good.

    Without this, an engine core whose server was killed with SIGKILL lives on, holding the
    model and the KV cache in memory, with nobody left to stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and parent != 1:  # 1: orphaned before the watch began
            time.sleep(poll)
        log.warning("the server (pid %d) is gone: stopping engine process %d", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=watch, name="moe-lsp-parent-watch", daemon=True)
    thread.start()
    return thread


TERM_SECONDS = 1.5
"""Time `end_processes` gives a SIGTERM before it sends SIGKILL."""


def child_pids() -> set[int]:
    """Pids of every living descendant of this process."""
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def end_processes(pids: set[int], term_seconds: float = TERM_SECONDS) -> list[int]:
    """End these processes (from `child_pids`): SIGTERM, and SIGKILL for those still there
    after `term_seconds`. Returns the pids that were running.

    multiprocessing's resource tracker is left alone: it ignores SIGTERM, ends by itself when
    this process does, and frees the shared memory the engine left behind as it goes."""
    import psutil

    mine = []
    for pid in sorted(pids):
        try:
            proc = psutil.Process(pid)
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                if not any("resource_tracker" in part for part in proc.cmdline()):
                    mine.append(proc)
        except psutil.Error:
            continue
    if not mine:
        return []
    for proc in mine:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(mine, timeout=term_seconds)
    for proc in alive:
        log.warning("engine process %d did not end on SIGTERM: killing it", proc.pid)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=term_seconds)
    return [p.pid for p in mine]
