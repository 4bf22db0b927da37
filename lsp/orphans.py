"""Owns the engine processes' end when the server dies without stopping them (a parent watch)."""

from __future__ import annotations

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
