"""Soak, shared vs standalone: the same editors typing the same script through one shared
server (`moe-lsp connect`, one LSP client per editor) and then through standalone
`moe-lsp serve` processes over stdio, one after the other. Run by `soak --compare-shared`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types as lsp

from moe_lsp.lsp.demo import DemoClient, quiet_client
from tests.bench.report import render_tables, save_results
from tests.bench.soak import SETTLE_SECONDS, editor
from tests.bench.soak_compare import (
    assign_editors,
    comparison_table,
    failures,
    fit_servers,
    latency_summary,
    project_memory,
)
from tests.bench.soak_plot import draw
from tests.bench.soak_procs import Reaper, cpu_seconds, find_shared_server, pss_mib

ENGINE_ARGS = ("--kv-cache-gib", "1")
"""Engine flags of both modes (the shared server's come from the `connect` that starts it)."""
IDLE_EXIT = 5
READY_TIMEOUT = 600.0
EXIT_WAIT = 60.0
"""How long a server may take to leave by itself (the shared one: idle exit, then engine stop)."""
CLI = (sys.executable, "-m", "moe_lsp.lsp.cli")


async def open_client(cmd: Sequence[str], log: Any, reaper: Reaper) -> DemoClient:
    """Start `cmd` as one editor's stdio server command and initialize."""
    client = quiet_client()
    await client.start_server(list(cmd), log, new_session=True)
    assert client._server is not None
    reaper.watch(client._server.pid)
    await asyncio.wait_for(
        client.initialize_async(
            lsp.InitializeParams(process_id=os.getpid(), capabilities=lsp.ClientCapabilities())
        ),
        120,
    )
    client.initialized(lsp.InitializedParams())
    return client


async def wait_ready(client: DemoClient) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        s = await client.protocol.send_request_async("moe/stats", {})
        if s.state == "failed":
            raise SystemExit(f"engine failed: {s.message}")
        if s.state == "ready":
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"engine not ready after {READY_TIMEOUT:.0f} s")


async def close_client(client: DemoClient) -> None:
    """shutdown, exit, end of input; the client's process is killed if it does not leave."""
    proc = client._server
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.shutdown_async(None), 30)
        client.exit(None)
    if proc is not None and proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    try:
        await asyncio.wait_for(client.stop(), EXIT_WAIT)
    except (TimeoutError, Exception):
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


async def drive(
    name: str,
    clients: list[DemoClient],
    editor_map: list[list[int]],
    server_pids: list[int],
    forwarder_pids: list[int],
    minutes: float,
    seed: int,
    every: float,
) -> dict[str, Any]:
    """Type for `minutes` (editor_map[c]: the editors on client c), sampling memory and
    moe/stats every `every` s, then let the engine settle. Clients are left open."""
    counts = dict.fromkeys(
        ("requests", "answered", "non_empty", "cancelled", "errors", "unanswered", "in_time"), 0
    )
    samples: list[tuple[float, float]] = []
    trace: list[dict[str, Any]] = []
    t0 = time.monotonic()
    until = t0 + minutes * 60
    stats_clients = clients[:1] if name == "shared" else clients

    async def sample() -> dict[str, Any]:
        servers = [await asyncio.to_thread(pss_mib, pid) for pid in server_pids]
        forwarders = sum([await asyncio.to_thread(pss_mib, pid, False) for pid in forwarder_pids])
        stats = [await c.protocol.send_request_async("moe/stats", {}) for c in stats_clients]
        row = {
            "t": round(time.monotonic() - t0, 1),
            "server_pss_mib": [round(v, 1) for v in servers],
            "forwarder_pss_mib": round(forwarders, 1),
            "pss_mib": round(sum(servers) + forwarders, 1),
            "sessions": sum(s.server.sessions for s in stats),
            "engine_running": sum(s.engine.running for s in stats),
            "engine_requests": sum(s.engine.requests for s in stats),
            **{f"client_{k}": v for k, v in counts.items()},
        }
        trace.append(row)
        return row

    async def sampler() -> None:
        while True:
            row = await sample()
            print(
                f"[{name} {row['t']:5.0f} s] PSS {row['pss_mib'] / 1024:.2f} GiB, requests "
                f"{counts['requests']}, answered {counts['answered']}, sessions "
                f"{row['sessions']}, engine running {row['engine_running']}",
                file=sys.stderr,
                flush=True,
            )
            if time.monotonic() >= until:
                return
            await asyncio.sleep(every)

    await asyncio.gather(
        sampler(),
        *(
            editor(clients[c], i, until, t0, samples, counts, random.Random(seed * 1000 + i))
            for c, ids in enumerate(editor_map)
            for i in ids
        ),
    )
    quiet_by = time.monotonic() + SETTLE_SECONDS
    while True:
        await asyncio.sleep(0.5)
        stats = [await c.protocol.send_request_async("moe/stats", {}) for c in stats_clients]
        if sum(s.engine.running for s in stats) == 0 or time.monotonic() >= quiet_by:
            break
    end = await sample()
    per_server = [max(row["server_pss_mib"][k] for row in trace) for k in range(len(server_pids))]
    return {
        "name": name,
        "minutes": minutes,
        "editors": sum(len(ids) for ids in editor_map),
        "clients": len(clients),
        "servers": len(server_pids),
        **counts,
        **latency_summary(samples),
        "engine_running_at_end": end["engine_running"],
        "engine_requests": end["engine_requests"],
        "sessions_max": max(row["sessions"] for row in trace),
        "pss_mib_peak": max(row["pss_mib"] for row in trace),
        "pss_mib_end": end["pss_mib"],
        "pss_mib_per_server": max(per_server) if per_server else None,
        "forwarder_pss_mib_end": end["forwarder_pss_mib"] if forwarder_pids else None,
        "trace": trace,
        "samples": samples,
    }


async def wait_gone(reaper: Reaper, timeout: float) -> float | None:
    """Seconds until every watched process has left, None when some are still alive."""
    t = time.monotonic()
    while reaper.alive():
        if time.monotonic() - t >= timeout:
            return None
        await asyncio.sleep(0.25)
    return time.monotonic() - t


async def run_shared(
    args: argparse.Namespace, out: Path, idle: Callable[[], Awaitable[float]] | None = None
) -> tuple[dict[str, Any], asyncio.Task[None]]:
    """The shared run; returns its figures and a task that waits for the server to leave by
    itself (idle exit), kills whatever is left and fills in `server_exit_seconds`. `idle`:
    CPU seconds of a preloaded standalone server (waits until it is ready)."""
    folder = Path(tempfile.mkdtemp(prefix="moe-soak-"))  # 0700, ours
    sock = folder / "server.sock"
    cmd = [*CLI, "connect", "--socket", str(sock), "--idle-exit", str(IDLE_EXIT), *ENGINE_ARGS]
    reaper = Reaper()
    log = open(out / f"{args.name}-connect.log", "wb")
    clients: list[DemoClient] = []

    async def cleanup() -> int:
        for pid in find_shared_server(sock):
            reaper.watch(pid)
        killed = reaper.kill_all()  # first: nothing below may stop it (a cancellation)
        for c in clients:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(c.stop(), 1)
        log.close()
        with contextlib.suppress(OSError):
            shutil.copy(folder / "server.log", out / f"{args.name}-server.log")
        shutil.rmtree(folder, ignore_errors=True)
        return killed

    try:
        t = time.monotonic()
        clients += await asyncio.gather(
            *(open_client(cmd, log, reaper) for _ in range(args.editors))
        )
        await asyncio.gather(*(wait_ready(c) for c in clients))
        ready = time.monotonic() - t
        servers = find_shared_server(sock)
        if len(servers) != 1:
            raise SystemExit(f"expected one shared server on {sock}, found pids {servers}")
        reaper.watch(servers[0])
        forwarders = [c._server.pid for c in clients if c._server is not None]
        cpu = await idle() if idle else 0.0
        r = await drive(
            "shared",
            clients,
            [[i] for i in range(args.editors)],
            servers,
            forwarders,
            args.minutes,
            args.seed,
            args.every,
        )
        r["ready_seconds"] = ready
        r["preloaded_cpu_seconds"] = (await idle() - cpu) if idle else None
        await asyncio.gather(*(close_client(c) for c in clients))
        reaper.watch(servers[0])
    except BaseException:
        with contextlib.suppress(BaseException):
            await cleanup()
        raise

    async def leave() -> None:
        try:
            r["server_exit_seconds"] = await wait_gone(reaper, EXIT_WAIT)
        finally:
            r["servers_left"] = await cleanup()

    return r, asyncio.create_task(leave())


class Standalone:
    """The standalone servers (`moe-lsp serve` over stdio, one client each) and their end."""

    def __init__(self, log_path: Path) -> None:
        self.cmd = [*CLI, "serve", *ENGINE_ARGS]
        self.reaper = Reaper()
        self.log = open(log_path, "wb")
        self.clients: list[DemoClient] = []

    async def start(self, n: int) -> float:
        """Start `n` more servers and wait until their engines are ready; returns seconds."""
        t = time.monotonic()
        new = await asyncio.gather(
            *(open_client(self.cmd, self.log, self.reaper) for _ in range(n))
        )
        self.clients += new
        await asyncio.gather(*(wait_ready(c) for c in new))
        return time.monotonic() - t

    def pids(self) -> list[int]:
        return [c._server.pid for c in self.clients if c._server is not None]

    async def cleanup(self) -> None:
        self.reaper.kill_all()  # first: nothing below may stop it (a cancellation)
        for c in self.clients:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(c.stop(), 1)
        self.log.close()


async def run_standalone(
    args: argparse.Namespace,
    alone: Standalone,
    first: asyncio.Task[float],
    shared_leaving: asyncio.Task[None],
) -> dict[str, Any]:
    """The standalone run, once the first server (`first`) is ready and the shared server has
    left (not waited for in smoke mode); how many more servers fit is measured then."""
    ready = await first
    if not args.smoke:  # smoke: the shared server leaves while this run types (time)
        await shared_leaving
    first_pid = alone.pids()[0]
    pss = max([await asyncio.to_thread(pss_mib, first_pid) for _ in range(3)])
    available = psutil.virtual_memory().available / 2**20
    servers = args.standalone or fit_servers(pss, available, args.editors)
    print(
        f"standalone: first server {pss / 1024:.2f} GiB PSS, {available / 1024:.1f} GiB "
        f"available -> {servers} servers",
        file=sys.stderr,
        flush=True,
    )
    if servers > 1:
        ready += await alone.start(servers - 1)
    pids = alone.pids()
    for pid in pids:
        alone.reaper.watch(pid)
    r = await drive(
        "standalone",
        alone.clients,
        assign_editors(args.editors, servers),
        pids,
        [],
        args.minutes,
        args.seed,
        args.every,
    )
    r["ready_seconds"] = ready
    r["pss_mib_first_alone"] = pss
    r["available_mib_with_first"] = available
    r["servers_chosen_by"] = "--standalone" if args.standalone else "memory estimate"
    await asyncio.gather(*(close_client(c) for c in alone.clients))
    gone = await wait_gone(alone.reaper, EXIT_WAIT)
    r["server_exit_seconds"] = gone
    r["servers_left"] = alone.reaper.kill_all() if gone is None else 0
    return r


async def compare(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    load = os.getloadavg()
    alone = Standalone(out / f"{args.name}-standalone.log")
    # --preload: the first standalone server loads beside the shared one and waits idle
    first = asyncio.create_task(alone.start(1)) if args.preload else None
    leaving: asyncio.Task[None] | None = None
    try:
        idle = functools.partial(preloaded_cpu, alone, first) if first else None
        shared, leaving = await run_shared(args, out, idle)
        load_between = os.getloadavg()
        first = first or asyncio.create_task(alone.start(1))
        standalone = await run_standalone(args, alone, first, leaving)
    finally:
        if first is not None and not first.done():
            first.cancel()
        try:
            if leaving is not None:
                with contextlib.suppress(BaseException):
                    await leaving
        finally:
            await alone.cleanup()
    return {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "loadavg_at_start": load,
        "loadavg_between_modes": load_between,
        "seed": args.seed,
        "shared": shared,
        "standalone": standalone,
        "projected_standalone_pss_mib": project_memory(
            standalone["pss_mib_per_server"], args.editors
        ),
    }


async def preloaded_cpu(alone: Standalone, first: asyncio.Task[float]) -> float:
    """CPU seconds of the preloaded standalone server so far (once its engine is ready)."""
    await asyncio.shield(first)
    return sum(cpu_seconds(pid) for pid in alone.pids())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    args.preload = args.smoke
    if args.smoke:
        args.editors, args.minutes, args.standalone, args.every = 2, 20 / 60, 1, 5
    args.name = "soak-shared-smoke" if args.smoke else "soak-shared"
    if args.standalone and not 1 <= args.standalone <= args.editors:
        raise SystemExit(f"--standalone must be within 1..{args.editors}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)  # end the servers on a kill too (finally blocks)
    result = asyncio.run(compare(args, out))
    table = comparison_table(result["shared"], result["standalone"])
    print(render_tables([table]))
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in result['loadavg_at_start'])}")
    json_path, png = save_results(result, out, args.name, draw(result))
    print(f"saved {json_path} and {png}")
    problems = failures(result["shared"]) + failures(result["standalone"])
    problems += [
        f"{m}: {result[m]['errors']} requests answered with an error"
        for m in ("shared", "standalone")
        if result[m]["errors"]
    ]
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0
