"""The soak's processes: memory (PSS) and CPU of process trees, the shared server's pid,
and the end of every process tree the bench started."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil


def pss_mib(pid: int, tree: bool = True) -> float:
    """PSS of `pid` and (`tree`) its descendants (0 when it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *(root.children(recursive=True) if tree else ())]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
    return total / 2**20


def find_shared_server(socket_path: Path) -> list[int]:
    """Pids of `serve --listen unix:<socket_path>` processes."""
    needle = f"unix:{socket_path}"
    pids = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "serve" in cmd and needle in cmd:
            pids.append(p.info["pid"])
    return pids


class Reaper:
    """Every process tree the bench is responsible for; `kill_all` ends what is left."""

    def __init__(self) -> None:
        self.pids: dict[int, set[int]] = {}

    def watch(self, pid: int) -> None:
        """Remember `pid` and its descendants as of now."""
        found = self.pids.setdefault(pid, set())
        with contextlib.suppress(psutil.Error):
            found.update(c.pid for c in psutil.Process(pid).children(recursive=True))

    def alive(self) -> list[int]:
        everything = {p for root, kids in self.pids.items() for p in (root, *kids)}
        return [p for p in everything if psutil.pid_exists(p) and not _zombie(p)]

    def kill_all(self) -> int:
        """SIGKILL every remembered process still alive (descendants first); returns how many."""
        for root in list(self.pids):
            self.watch(root)
        left = self.alive()
        for pid in sorted(left, key=lambda p: p in self.pids):  # roots last
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        return len(left)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its descendants so far."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total
