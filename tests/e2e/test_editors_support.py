"""Helpers for the editor tests that run `moe-lsp connect` (no tests of its own).

Each test gets a private socket folder: `XDG_RUNTIME_DIR` points at a fresh 0700 folder with a
short path (a unix socket path must fit in 108 bytes), so `connect` finds or starts the shared
server at `<folder>/moe-lsp/server.sock` and never the user's own. A shared server started by
`connect` outlives the editor (until its idle exit); `shared_server_space` stops what is left.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

SERVER_STOP_SECONDS = 30.0
"""How long a shared server gets to stop its engine after SIGTERM before it is killed."""


@dataclass(frozen=True)
class SharedServerSpace:
    """A private runtime folder for `moe-lsp connect` and the shared server it starts."""

    runtime: Path

    @property
    def folder(self) -> Path:
        """Where `connect` keeps the socket, the start lock and the server's log."""
        return self.runtime / "moe-lsp"

    @property
    def socket(self) -> Path:
        return self.folder / "server.sock"

    @property
    def server_log(self) -> Path:
        return self.folder / "server.log"

    def env(self) -> dict[str, str]:
        """Environment entries that send `connect` here."""
        return {"XDG_RUNTIME_DIR": str(self.runtime)}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.server_log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server.log)"


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.Error, OSError):
        return []


def server_processes(socket: Path) -> list[psutil.Process]:
    """Shared servers listening at `socket`: `serve` processes whose command line holds it."""
    found = []
    for p in psutil.process_iter():
        cmd = _cmdline(p)
        if "serve" in cmd and any(str(socket) in a for a in cmd):
            found.append(p)
    return found


def processes_holding(text: str) -> list[psutil.Process]:
    """Every process whose command line holds `text`."""
    return [p for p in psutil.process_iter() if any(text in a for a in _cmdline(p))]


def engine_processes(server: psutil.Process) -> list[psutil.Process]:
    """The vLLM engine-core processes below `server` (vLLM titles them `VLLM::EngineCore`)."""
    try:
        below = server.children(recursive=True)
    except (psutil.Error, OSError):
        return []
    return [p for p in below if any("EngineCore" in a for a in _cmdline(p))]


def tagged(name: str, tag: str) -> list[psutil.Process]:
    """Processes whose environment has `name=tag` (what the test started, and their children)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(name) == tag:
                found.append(p)
        except (psutil.Error, OSError):
            pass
    return found


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` s for `processes` to end; those still alive."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def stop_servers(socket: Path, grace: float = SERVER_STOP_SECONDS) -> None:
    """Stop the shared servers at `socket` and everything below them: SIGTERM (the server
    stops its engine), then SIGKILL after `grace` seconds."""
    servers = server_processes(socket)
    family: list[psutil.Process] = []
    for s in servers:
        family.append(s)
        with contextlib.suppress(psutil.Error, OSError):
            family += s.children(recursive=True)
    for s in servers:
        with contextlib.suppress(psutil.Error, OSError):
            s.terminate()
    for p in wait_gone(family, grace):
        with contextlib.suppress(psutil.Error, OSError):
            p.kill()
    wait_gone(family, 5)


@contextlib.contextmanager
def shared_server_space() -> Iterator[SharedServerSpace]:
    """A fresh private socket folder; on leaving, every server started there is stopped."""
    runtime = Path(tempfile.mkdtemp(prefix="moe-e2e-"))  # mode 0700
    space = SharedServerSpace(runtime)
    try:
        yield space
    finally:
        stop_servers(space.socket)
        shutil.rmtree(runtime, ignore_errors=True)


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.2) -> bool:
    """Poll `predicate()` until it is true or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
