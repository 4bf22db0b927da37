"""Logging setup: everything to stderr (or a file), never to the stdout the LSP stream uses."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import BinaryIO

DEFAULT_LOG_BYTES = 5 * 1024 * 1024
"""The default log file is rotated at this size (two old files kept)."""


def setup_logging(
    level: str = "INFO", log_file: str | None = None, default_file: Path | None = None
) -> None:
    """Send the root logger to `log_file` ('-': stderr only), else to stderr and, when it can
    be opened, `default_file` (private, rotated), with timestamps."""
    handlers: list[logging.Handler] = []
    if log_file and log_file != "-":
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
        if default_file is not None and not log_file:
            with contextlib.suppress(OSError):
                handlers.append(_private_rotating(default_file))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    for noisy in ("pygls", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _private_rotating(path: Path) -> logging.Handler:
    """A rotating handler on `path`, in a folder only the user can enter (0700), the file 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return logging.handlers.RotatingFileHandler(
        path, maxBytes=DEFAULT_LOG_BYTES, backupCount=2, encoding="utf-8"
    )


def protect_stdout() -> BinaryIO:
    """Keep the real stdout for LSP messages; point fd 1 (and child processes') at stderr."""
    lsp_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(lsp_fd, "wb", buffering=0)
