"""`bench_typing --peers`: the typing replay through moe-lsp, a llama.vim-like client on
llama-server and an llm-ls-like client on `vllm serve`, and moe-lsp's levers on and off.

Each run starts its own server, types the same functions with the same seed, and stops it.
Writes bench-results/typing-peers[-smoke].{json,png} and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import llama_cpp
from .machine import load_avg, machine_info
from .typing_peers import (
    SMOKE_CHARS,
    SMOKE_TASKS,
    TASKS,
    LlamaVimClient,
    LlmLsClient,
    MoeLspClient,
    replay,
)

LEVERS: dict[str, dict[str, Any]] = {
    "no-ngram-spec": {"engine": {"speculativeConfig": {}}},
    "no-adopt-grace": {"completion": {"adoptGraceMs": 0}},
    "first-cut-16": {"completion": {"firstAnswerChars": 16}},
    "fcfs": {"engine": {"extraEngineArgs": {"scheduling_policy": "fcfs"}}},
}
"""moe-lsp variants measured against the default: name -> initializationOptions merged in."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`a` with `b` merged in, nested dicts merged key by key."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _run_meta(result: dict[str, Any], started: float) -> dict[str, Any]:
    result["load_avg_before"] = started
    result["load_avg_after"] = load_avg()
    return result


async def run_moe(
    args: argparse.Namespace, label: str, options: dict[str, Any], tasks: Any, limit: int | None
) -> dict[str, Any]:
    from lsprotocol import types as lsp

    from moe_lsp.lsp.demo import quiet_client, server_command

    client = quiet_client()
    log = open(args.out / f"typing-peers-{label}.log", "w")
    await client.start_server(server_command(), stderr=log)
    try:
        init = merge({"engine": {"kvCacheGib": 1}}, options)
        await client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options=init)
        )
        client.initialized(lsp.InitializedParams())
        t0 = time.monotonic()
        while (s := await client.protocol.send_request_async("moe/stats", {})).state != "ready":
            if s.state == "failed":
                raise RuntimeError(f"engine failed: {s.message}")
            if time.monotonic() - t0 > 600:
                raise RuntimeError("engine not ready after 600 s")
            await asyncio.sleep(0.5)
        say(f"{label}: engine ready in {time.monotonic() - t0:.1f} s")
        before = load_avg()
        peer = MoeLspClient(client)
        peer.name = label
        result = await replay(peer, tasks, args.seed, limit, say)
        result["options"] = options
        await asyncio.wait_for(client.shutdown_async(None), 60)
        client.exit(None)
    finally:
        proc = client._server
        try:
            await asyncio.wait_for(client.stop(), 30)
        except TimeoutError:
            if proc is not None and proc.returncode is None:
                proc.kill()
        log.close()
    return _run_meta(result, before)


async def run_llama(
    args: argparse.Namespace, tasks: Any, limit: int | None, smoke: bool
) -> dict[str, Any]:
    import httpx

    from .alternatives import LlamaServer

    server = llama_cpp.cached_server()
    if server is None and not smoke:
        say("llama.cpp: building llama-server (up to 20 min) ...")
        built = await asyncio.to_thread(llama_cpp.build)
        server = built.server
        if server is None:
            return {"label": "llama.vim-like", "skipped": built.message}
    if server is None:
        return {
            "label": "llama.vim-like",
            "skipped": "llama-server is not built (python -m tests.bench.llama_cpp build); "
            "the smoke does not build it",
            "optional": True,
        }
    gguf = await asyncio.to_thread(llama_cpp.gguf_path)
    threads = args.llama_threads
    with LlamaServer(server, gguf, args.out / "typing-peers-llama.log", threads) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        async with httpx.AsyncClient(timeout=60) as http:
            probe = await http.post(
                f"{base}/infill",
                json={"input_prefix": "def f(", "input_suffix": "", "prompt": "", "n_predict": 1},
            )
        infill = probe.status_code == 200
        say(f"llama.cpp: /infill {'works' if infill else 'refused'} ({probe.status_code})")
        before = load_avg()
        client = LlamaVimClient(base, infill)
        result = await replay(client, tasks, args.seed, limit, say)
        await client.http.aclose()
    result["endpoint"] = "/infill" if infill else "/completion (the model has no FIM tokens)"
    result["gguf"] = str(gguf)
    result["requests"] = client.requests
    result["llama_threads"] = args.llama_threads
    return _run_meta(result, before)


async def run_llmls(
    args: argparse.Namespace, model_dir: str, tasks: Any, limit: int | None
) -> dict[str, Any]:
    from moe_lsp.inference.config import EngineConfig
    from moe_lsp.inference.vllm_engine import _on_cpu, _quiet_env, build_engine_args

    from .alternatives import VllmHttp

    config = EngineConfig(model=None)
    on_cpu = _on_cpu()
    _quiet_env(config, model_dir, on_cpu)
    engine_args = build_engine_args(config, model_dir, on_cpu=on_cpu)
    engine_args["disable_log_stats"] = False
    # a plain `vllm serve`, as an llm-ls user runs it: none of moe-lsp's own engine additions
    for key in ("speculative_config", "worker_extension_cls"):
        engine_args.pop(key, None)
    with VllmHttp(model_dir, engine_args, args.out / "typing-peers-vllm.log") as srv:
        base = f"http://127.0.0.1:{srv.port}"
        before = load_avg()
        client = LlmLsClient(base, "bench")
        result = await replay(client, tasks, args.seed, limit, say)
        await client.http.aclose()
    return _run_meta(result, before)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from moe_lsp.inference import model_store

    tasks = SMOKE_TASKS if args.smoke else TASKS
    if args.tasks:
        tasks = tasks[: args.tasks]
    limit = SMOKE_CHARS if args.smoke else None
    model_dir = str(model_store.default_model_dir())
    runs: list[dict[str, Any]] = []
    wanted = args.only.split(",") if args.only else ["moe-lsp", "llama", "llm-ls", *args.levers]
    for name in wanted:
        t0 = time.monotonic()
        try:
            if name == "moe-lsp":
                runs.append(await run_moe(args, "moe-lsp", {}, tasks, limit))
            elif name == "llama":
                runs.append(await run_llama(args, tasks, limit, args.smoke))
            elif name == "llm-ls":
                runs.append(await run_llmls(args, model_dir, tasks, limit))
            elif name in LEVERS:
                runs.append(await run_moe(args, f"moe-lsp+{name}", LEVERS[name], tasks, limit))
            else:
                runs.append({"label": name, "skipped": "unknown run"})
        except Exception as err:  # one peer failing must not lose the others
            runs.append({"label": name, "skipped": f"{type(err).__name__}: {err}"})
        runs[-1]["wall_s"] = time.monotonic() - t0
        say(f"{runs[-1]['label']}: done in {runs[-1]['wall_s']:.0f} s")
    return {
        "machine": machine_info().to_json(),
        "tasks": [f"{m}.{f}" for m, f in tasks],
        "smoke": bool(args.smoke),
        "runs": runs,
        "note": "other processes may share the CPUs: see load_avg_before/after per run",
    }


ROWS = (
    ("keystrokes", "keystrokes", "{:d}"),
    ("ghost text before the next key", "shown_before_next_key", "{:.1%}"),
    ("ghost text within 300 ms", "shown_within_300ms", "{:.1%}"),
    ("useful ghost text before the next key", "useful_before_next_key", "{:.1%}"),
    ("useful ghost text within 300 ms", "useful_within_300ms", "{:.1%}"),
    ("useful share of ghost text shown", "useful_share_of_shown", "{:.1%}"),
    ("characters spared", "chars_spared", "{:.1%}"),
    ("time to ghost text p50 (ms)", "p50_ghost_ms", "{:.0f}"),
    ("time to ghost text p95 (ms)", "p95_ghost_ms", "{:.0f}"),
    ("engine tokens", "engine_tokens", "{:d}"),
    ("engine tokens per useful suggestion", "tokens_per_useful", "{:.1f}"),
)


def table(report: dict[str, Any]) -> str:
    """The figures side by side, one column per run; skipped runs say why below."""
    runs = [r for r in report["runs"] if "skipped" not in r]
    width = max(len(r[0]) for r in ROWS)
    out = [f"{'':<{width}}  " + "  ".join(f"{r['label']:>22}" for r in runs)]
    for title, key, fmt in ROWS:
        cells = []
        for r in runs:
            v = r.get(key)
            cells.append(f"{'-' if v is None else fmt.format(v):>22}")
        out.append(f"{title:<{width}}  " + "  ".join(cells))
    loads = [
        f"{r['label']}: {r['load_avg_before'][0]:.1f}"
        for r in runs
        if r.get("load_avg_before") is not None
    ]
    if loads:
        out.append("1-min load average at start: " + ", ".join(loads))
    for r in report["runs"]:
        if "skipped" in r:
            out.append(f"{r['label']}: skipped: {r['skipped']}")
    out.append(f"tasks: {', '.join(report['tasks'])}")
    return "\n".join(out)


def plot(report: dict[str, Any], path: Path) -> None:
    """Left: share of keystrokes with (useful) ghost text; right: time to ghost text CDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if "skipped" not in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    keys = [
        ("shown_before_next_key", "ghost text before next key"),
        ("useful_within_300ms", "useful within 300 ms"),
        ("useful_before_next_key", "useful before next key"),
        ("chars_spared", "characters spared"),
    ]
    width = 0.8 / max(1, len(runs))
    for i, r in enumerate(runs):
        xs = [j + i * width for j in range(len(keys))]
        left.bar(xs, [r.get(k) or 0 for k, _ in keys], width, label=r["label"])
    left.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))])
    left.set_xticklabels([t for _, t in keys], rotation=15, fontsize=8)
    left.set_ylabel("share of keystrokes (characters for the last)")
    left.legend(fontsize=8)
    for r in runs:
        values = sorted(r.get("ghost_ms") or [])
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            right.step(values, ys, where="post", label=r["label"])
    right.axvline(300, color="grey", linestyle=":", linewidth=1)
    right.set_xscale("log")
    right.set_xlabel("time to ghost text (ms, log)")
    right.set_ylabel("share of ghost texts shown")
    right.legend(fontsize=8)
    fig.suptitle("Typing replay at 8 keys/s: " + ", ".join(report["tasks"]))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", action="store_true", help="(accepted for bench_typing)")
    parser.add_argument("--smoke", action="store_true", help="one short function; no build")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=None, help="type only the first N tasks")
    parser.add_argument(
        "--levers", default="", help=f"moe-lsp variants to add: {', '.join(LEVERS)} (comma list)"
    )
    parser.add_argument("--only", default="", help="runs to do: moe-lsp,llama,llm-ls,<lever>")
    parser.add_argument(
        "--llama-threads",
        type=int,
        default=1,
        help="llama-server threads (default 1, as vLLM's CPU worker here; 2 threads ran 3x "
        "slower than 1 on the loaded 2-core machine)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.levers = [x for x in args.levers.split(",") if x]
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    report = asyncio.run(run(args))
    name = "typing-peers-smoke" if args.smoke else "typing-peers"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2))
    plot(report, args.out / f"{name}.png")
    print(table(report))
    print(f"saved {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    ran = [r for r in report["runs"] if "skipped" not in r]
    failed = [r for r in report["runs"] if "skipped" in r and not r.get("optional")]
    return 0 if ran and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
