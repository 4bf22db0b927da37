"""Logging setup: everything to stderr (or a file), never to the stdout the LSP stream uses."""

from __future__ import annotations

import logging
import os
import sys
from typing import BinaryIO


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    """Send the root logger to stderr or `log_file`, with timestamps."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pygls", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def protect_stdout() -> BinaryIO:
    """Keep the real stdout for LSP messages; point fd 1 (and child processes') at stderr."""
    lsp_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(lsp_fd, "wb", buffering=0)
