"""Shutdown: how long the real server takes to answer `shutdown`, and to be gone after `exit`.

Starts the server with the real engine `--runs` times; each time waits until it is ready,
sends `shutdown`, then `exit`, and checks that no engine process is left. Saves JSON and a
plot in bench-results/."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types as lsp

from moe_lsp.lsp.demo import quiet_client, server_command

from .report import median, save_results


async def one_run() -> dict[str, Any]:
    client = quiet_client()

    await client.start_server(server_command(), open(os.devnull, "wb"))
    assert client._server is not None
    server = client._server
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    while (await client.protocol.send_request_async("moe/stats", {})).state != "ready":
        await asyncio.sleep(0.5)
    children = psutil.Process(server.pid).children(recursive=True)
    t0 = time.perf_counter()
    await client.shutdown_async(None)
    answered = time.perf_counter()
    client.exit(None)
    code = await server.wait()
    gone = time.perf_counter()
    _, alive = psutil.wait_procs(children, timeout=30)
    await client.stop()
    return {
        "shutdown_answered_ms": (answered - t0) * 1000,
        "process_gone_ms": (gone - t0) * 1000,
        "exit_code": code,
        "children_left": [p.pid for p in alive],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    runs = [asyncio.run(one_run()) for _ in range(args.runs)]
    answer = median([r["shutdown_answered_ms"] for r in runs])
    gone = median([r["process_gone_ms"] for r in runs])
    left = sum(len(r["children_left"]) for r in runs)
    print(f"shutdown answered after {answer:.0f} ms (median of {len(runs)})")
    print(f"server process gone {gone:.0f} ms after shutdown was sent")
    print(f"exit codes {[r['exit_code'] for r in runs]}; engine processes left: {left}")

    def draw(axes: Any) -> None:
        ax = axes[0][0]
        xs = range(len(runs))
        ax.bar(
            [x - 0.2 for x in xs],
            [r["shutdown_answered_ms"] for r in runs],
            0.4,
            label="shutdown answered",
        )
        ax.bar(
            [x + 0.2 for x in xs], [r["process_gone_ms"] for r in runs], 0.4, label="process gone"
        )
        ax.set_xlabel("run")
        ax.set_ylabel("ms after shutdown was sent")
        ax.legend()

    data = {"runs": runs, "median_answered_ms": answer, "median_gone_ms": gone}
    json_path, png = save_results(data, Path(args.out), "shutdown", draw, ncols=1, nrows=1)
    print(f"saved {json_path} and {png}")
    return 0 if left == 0 and all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
