"""Soak: 8 simulated editors typing into one server for N minutes against the real engine.

Each editor types functions and classes drawn from a few templates with random names and
numbers, at 5 to 16 characters a second, asking for ghost text at every keystroke.

Reports requests served, unanswered (must be 0), engine requests left running (must be 0),
server memory at start and end, and p95 latency in the first and last minute. Saves JSON and
a plot."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types as lsp

from moe_lsp.lsp.demo import DemoClient, quiet_client, server_command

SNIPPETS = (
    '''def {name}_{n}(items):
    """Return the sum of the items divisible by {k}."""
    total = 0
    for item in items:
        if item % {k} == 0:
            total += item
    return total


''',
    """class {Name}{n}:
    def __init__(self, limit):
        self.limit = limit
        self.seen = []

    def add(self, value):
        if len(self.seen) >= self.limit:
            self.seen.pop(0)
        self.seen.append(value * {k})


""",
    """def {name}_lines_{n}(path):
    with open(path) as handle:
        lines = [line.strip() for line in handle]
    return [line for line in lines if len(line) > {k}]


""",
    """def {name}_table_{n}(rows):
    table = {{}}
    for key, value in rows:
        table.setdefault(key, []).append(value + {k})
    return {{key: sorted(values) for key, values in table.items()}}


""",
)
"""Code the editors type, one after another, with names and numbers drawn at random."""
NAMES = ("parse", "count", "merge", "scale", "filter", "collect", "render", "update")
SETTLE_SECONDS = 15.0
"""After typing stops, how long the engine may take to finish what runs (then it has leaked)."""
HEADER = "import os\nimport sys\n\n\n"


def rss_mib(pid: int) -> float:
    """Resident memory of the server process itself (the engine runs in child processes)."""
    return psutil.Process(pid).memory_info().rss / 2**20


def tree_pss_mib(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


async def editor(
    client: DemoClient,
    idx: int,
    until: float,
    t0: float,
    samples: list[tuple[float, float]],
    counts: dict[str, int],
    rng: random.Random,
) -> None:
    uri = f"file:///soak/editor_{idx}.py"
    text = HEADER
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    version, n = 1, 0
    pending: list[asyncio.Future[Any]] = []
    last: asyncio.Future[Any] | None = None
    while time.monotonic() < until:
        name = rng.choice(NAMES)
        body = rng.choice(SNIPPETS).format(
            n=n, k=rng.randint(2, 9), name=name, Name=name.capitalize()
        )
        n += 1
        for ch in body:
            if time.monotonic() >= until:
                break
            lines = text.split("\n")
            line, col = len(lines) - 1, len(lines[-1])
            counts["in_time"] += answered(last)  # the last request's answer came before this key
            version += 1
            client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(
                    text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        lsp.TextDocumentContentChangePartial(
                            range=lsp.Range(
                                start=lsp.Position(line=line, character=col),
                                end=lsp.Position(line=line, character=col),
                            ),
                            text=ch,
                        )
                    ],
                )
            )
            text += ch
            lines = text.split("\n")
            pos = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
            sent = time.monotonic()
            fut = asyncio.ensure_future(
                client.text_document_inline_completion_async(
                    lsp.InlineCompletionParams(
                        text_document=lsp.TextDocumentIdentifier(uri=uri),
                        position=pos,
                        context=lsp.InlineCompletionContext(
                            trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
                        ),
                    )
                )
            )

            def done(f: asyncio.Future[Any], sent: float = sent) -> None:
                if f.cancelled():
                    return
                if f.exception() is None:
                    counts["answered"] += 1
                    items = getattr(f.result(), "items", None)
                    counts["non_empty"] += 1 if items else 0
                    samples.append((sent - t0, (time.monotonic() - sent) * 1000))
                else:
                    counts["cancelled" if "cancel" in str(f.exception()).lower() else "errors"] += 1

            fut.add_done_callback(done)
            pending.append(fut)
            last = fut
            counts["requests"] += 1
            await asyncio.sleep(rng.uniform(0.06, 0.2))  # 5-16 characters a second
        pending = [f for f in pending if not f.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=30)
        counts["unanswered"] += len(still)
    counts["in_time"] += answered(last)  # no keystroke came after the last request


def answered(fut: asyncio.Future[Any] | None) -> int:
    """1 when `fut` has its answer (a result, not an error or a cancellation), else 0."""
    return int(fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None)


async def sampler(
    client: DemoClient,
    pid: int,
    t0: float,
    until: float,
    counts: dict[str, int],
    trace: list[dict[str, Any]],
    every: float,
) -> None:
    """Every `every` seconds: server RSS, client-side counts and the server's own counters."""
    while True:
        s = await client.protocol.send_request_async("moe/stats", {})
        trace.append(
            {
                "t": round(time.monotonic() - t0, 1),
                "rss_mib": round(rss_mib(pid), 1),
                **{f"client_{k}": v for k, v in counts.items()},
                "server": s.counts._asdict(),
                "engine_running": s.engine.running,
                "engine_requests": s.engine.requests,
                "engine_generated": s.engine.generatedTokens,
                "engine_prompt_tokens": s.engine.promptTokens,
                "engine_cached_tokens": s.engine.cachedPromptTokens,
            }
        )
        row = trace[-1]
        print(
            f"[{row['t']:6.0f} s] rss {row['rss_mib']:.0f} MiB, requests {counts['requests']}, "
            f"answered {counts['answered']} ({counts['non_empty']} with text), engine requests "
            f"{s.engine.requests}, running {s.engine.running}",
            file=sys.stderr,
            flush=True,
        )
        if time.monotonic() >= until:
            return
        await asyncio.sleep(every)


async def soak(
    minutes: float, editors: int, log_path: Path, every: float, settings: dict[str, Any]
) -> dict[str, Any]:
    client = quiet_client()

    log = open(log_path, "wb")
    await client.start_server(server_command(), log)
    assert client._server is not None
    pid = client._server.pid
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), initialization_options=settings or None
        )
    )
    client.initialized(lsp.InitializedParams())
    while True:
        s = await client.protocol.send_request_async("moe/stats", {})
        if s.state in ("ready", "failed"):
            break
        await asyncio.sleep(0.5)
    if s.state == "failed":
        raise SystemExit(f"engine failed: {s.message}")
    rss_start, pss_start = rss_mib(pid), tree_pss_mib(pid)
    counts = {
        "requests": 0,
        "answered": 0,
        "non_empty": 0,
        "cancelled": 0,
        "errors": 0,
        "unanswered": 0,
        "in_time": 0,
    }
    samples: list[tuple[float, float]] = []
    trace: list[dict[str, Any]] = []
    t0 = time.monotonic()
    until = t0 + minutes * 60
    rng = random.Random(11)
    await asyncio.gather(
        sampler(client, pid, t0, until, counts, trace, every),
        *(editor(client, i, until, t0, samples, counts, rng) for i in range(editors)),
    )
    # Hot streaks may go on generating after the last answer, up to the completion timeout
    # (10 s by default): an engine request still running after that has leaked.
    quiet_by = time.monotonic() + SETTLE_SECONDS
    while True:
        await asyncio.sleep(0.5)
        s = await client.protocol.send_request_async("moe/stats", {})
        if s.engine.running == 0 or time.monotonic() >= quiet_by:
            break
    rss_end, pss_end = rss_mib(pid), tree_pss_mib(pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    warm = next((row["rss_mib"] for row in trace if row["t"] >= 60), rss_start)
    first = [ms for t, ms in samples if t < 60]
    last = [ms for t, ms in samples if t >= minutes * 60 - 60]
    return {
        "minutes": minutes,
        "editors": editors,
        **counts,
        "engine_running_at_end": s.engine.running,
        "server_counts": s.counts._asdict(),
        "server_rss_mib_start": rss_start,
        "server_rss_mib_end": rss_end,
        "rss_growth_pct": 100 * (rss_end - rss_start) / rss_start,
        "server_rss_mib_after_first_minute": warm,
        "rss_growth_after_first_minute_pct": 100 * (rss_end - warm) / warm,
        "engine_requests": s.engine.requests,
        "engine_aborted": s.engine.aborted,
        "engine_generated_tokens": s.engine.generatedTokens,
        "engine_prompt_tokens": s.engine.promptTokens,
        "engine_cached_prompt_tokens": s.engine.cachedPromptTokens,
        "tree_pss_mib_start": pss_start,
        "tree_pss_mib_end": pss_end,
        "p95_ms_first_minute": pct(first, 0.95),
        "p95_ms_last_minute": pct(last, 0.95),
        "p50_ms_all": pct([ms for _, ms in samples], 0.5),
        "trace": trace,
        "samples": samples,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--editors", type=int, default=8)
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--every", type=float, default=10, help="seconds between state samples")
    ap.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help='initializationOptions, e.g. \'{"completion": {"contextShare": 0}}\'',
    )
    ap.add_argument(
        "--compare-shared",
        action="store_true",
        help="the editors through one shared server (moe-lsp connect, one client each), then "
        "through standalone servers; a side-by-side table (bench-results/soak-shared.*)",
    )
    ap.add_argument(
        "--standalone",
        type=int,
        default=0,
        help="with --compare-shared: standalone servers to run (default: as many as fit in "
        "memory, at most --editors); the editors are spread over them",
    )
    ap.add_argument("--seed", type=int, default=11, help="with --compare-shared: typing seed")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="with --compare-shared: 2 editors, 20 s per mode, 1 standalone server",
    )
    args = ap.parse_args()
    if args.compare_shared:
        from tests.bench.soak_shared import main as compare_main

        return compare_main(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    r = asyncio.run(
        soak(args.minutes, args.editors, out / "soak-server.log", args.every, args.settings)
    )
    print(f"soak: {r['editors']} editors for {r['minutes']} min on one server")
    print(
        f"requests {r['requests']}, answered {r['answered']} ({r['non_empty']} with ghost "
        f"text), cancelled (superseded) {r['cancelled']}, errors {r['errors']}, "
        f"unanswered {r['unanswered']}"
    )
    cached = r["engine_cached_prompt_tokens"] / max(1, r["engine_prompt_tokens"])
    print(
        f"engine: {r['engine_requests']} requests ({r['engine_aborted']} aborted), "
        f"{r['engine_generated_tokens']} tokens generated, {100 * cached:.0f} % of prompt "
        f"tokens from the prefix cache; still running at the end: {r['engine_running_at_end']}"
    )
    print(
        f"server RSS {r['server_rss_mib_start']:.0f} -> {r['server_rss_mib_end']:.0f} MiB "
        f"({r['rss_growth_pct']:+.1f} %; {r['rss_growth_after_first_minute_pct']:+.1f} % after "
        f"the first minute); server+engine PSS {r['tree_pss_mib_start']:.0f} -> "
        f"{r['tree_pss_mib_end']:.0f} MiB"
    )
    print(
        f"p95 latency: first minute {r['p95_ms_first_minute']:.0f} ms, last minute "
        f"{r['p95_ms_last_minute']:.0f} ms; p50 overall {r['p50_ms_all']:.0f} ms"
    )
    (out / "soak.json").write_text(json.dumps(r, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, mem) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax.scatter([t for t, _ in r["samples"]], [ms for _, ms in r["samples"]], s=3)
    ax.set_yscale("log")
    ax.set_ylabel("request latency (ms)")
    ax.set_title(f"Soak: {r['editors']} editors, {r['minutes']} min")
    mem.plot([row["t"] for row in r["trace"]], [row["rss_mib"] for row in r["trace"]])
    mem.set_xlabel("seconds")
    mem.set_ylabel("server RSS (MiB)")
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=100)
    print(f"saved {out / 'soak.json'} and {out / 'soak.png'}")
    ok = (
        r["unanswered"] == 0
        and r["errors"] == 0
        and r["engine_running_at_end"] == 0
        and r["rss_growth_pct"] < 5
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
