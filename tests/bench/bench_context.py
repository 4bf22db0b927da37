"""Context-engine benchmark: prompt build time on a 5,000-line file, and vLLM prefix-cache hit
rate over a typing replay with the sliding window (step 1) against the stable window."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import sysconfig
import time
import uuid
from pathlib import Path

from moe_lsp.lsp.documents import Document
from moe_lsp.prompts.builder import Budget, Prompt, Request, build
from moe_lsp.prompts.crossfile import OpenDocument
from moe_lsp.prompts.profiles import profile_by_name

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = ["textwrap.py", "argparse.py", "inspect.py", "typing.py", "dataclasses.py", "ast.py"]
TYPED = '''

def summarize(records):
    """Return the mean value of the records."""
    total = 0
    for record in records:
        total += record.value
    return total / len(records)
'''


def big_file(lines: int) -> str:
    """A real Python file of about `lines` lines, built from standard-library modules."""
    out: list[str] = []
    for name in SOURCES * 4:
        out.extend((STDLIB / name).read_text(encoding="utf-8").splitlines())
        if len(out) >= lines:
            break
    return "\n".join(out[:lines]) + "\n"


def others() -> list[OpenDocument]:
    docs = []
    for name in ("shlex.py", "string.py", "fnmatch.py", "glob.py", "calendar.py"):
        text = (STDLIB / name).read_text(encoding="utf-8")
        docs.append(OpenDocument(f"file:///bench/{name}", name, "python", text, 1))
    return docs


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def bench_build(tok: object, n: int, seed: int = 7) -> dict[str, float]:
    """Time `build` at `n` cursor positions of a 5,000-line file with 5 other open files."""
    import random

    text = big_file(5000)
    doc = Document("file:///bench/big.py", "python", 1, text)
    profile = profile_by_name("prefix-only")
    rng = random.Random(seed)
    ctx = others()
    times, edit_times = [], []
    cold = None
    for i in range(n + 1):
        # The cursor at the end of a random line, as when typing; then one keystroke there.
        line = rng.randrange(100, 4900)
        offset = doc.offset_at(line, 10_000, "utf-32")  # type: ignore[arg-type]
        req = Request(doc.text, offset, "big.py", doc.spec, doc.tree, ctx, uri=doc.uri, version=1)
        t0 = time.perf_counter()
        build(req, tok, profile, Budget())
        elapsed = (time.perf_counter() - t0) * 1000
        if i == 0:
            cold = elapsed  # first call also indexes the other open files
            continue
        times.append(elapsed)
        t0 = time.perf_counter()
        doc.apply_change(((line, 10_000), (line, 10_000)), " ", doc.version + 1)
        edit_times.append((time.perf_counter() - t0) * 1000)
    return {
        "lines": text.count("\n"),
        "build_ms_cold": cold,
        "build_ms_p50": pct(times, 0.5),
        "build_ms_p99": pct(times, 0.99),
        "edit_reparse_ms_p50": pct(edit_times, 0.5),
        "edit_reparse_ms_p99": pct(edit_times, 0.99),
        "samples": n,
    }


async def replay(engine: object, tok: object, step: int, typed: str) -> dict[str, float]:
    """Type `typed` at the end of the big file one character at a time; one request each."""
    from moe_lsp.inference.engine import Sampling

    await engine._llm.reset_prefix_cache()  # type: ignore[attr-defined]
    doc = Document("file:///bench/big.py", "python", 1, big_file(5000))
    profile = profile_by_name("prefix-only")
    budget = Budget(step_lines=step)
    prompt_tokens = cached = requests = 0
    for ch in typed:
        line, col = doc.position_at(len(doc.text), "utf-32")  # type: ignore[arg-type]
        doc.apply_change(((line, col), (line, col)), ch, doc.version + 1)
        req = Request(doc.text, len(doc.text), "big.py", doc.spec, doc.tree, uri=doc.uri)
        p = build(req, tok, profile, budget)
        if not isinstance(p, Prompt) or not p.token_ids:
            continue
        async for d in engine.stream(
            f"b-{uuid.uuid4().hex[:8]}", p.token_ids, Sampling(max_tokens=1)
        ):  # type: ignore[attr-defined]
            if d.cached_tokens is not None:
                cached += d.cached_tokens
        prompt_tokens += len(p.token_ids)
        requests += 1
    return {
        "step_lines": step,
        "requests": requests,
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached,
        "hit_rate": cached / prompt_tokens if prompt_tokens else 0.0,
    }


async def run_engine_part(typed: str) -> list[dict[str, float]]:
    from moe_lsp.inference.config import EngineConfig
    from moe_lsp.inference.model_store import default_model_dir, prepare_default_model
    from moe_lsp.inference.vllm_engine import VllmEngine

    model = default_model_dir()
    prepare_default_model(model)
    engine = VllmEngine(EngineConfig(), str(model))
    await asyncio.to_thread(engine.start)
    try:
        return [await replay(engine, engine.tokenizer, step, typed) for step in (1, 32)]
    finally:
        engine.shutdown()


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    bb = result["build"]
    a.bar(
        ["build p50", "build p99", "edit+reparse p50", "edit+reparse p99"],
        [
            bb["build_ms_p50"],
            bb["build_ms_p99"],
            bb["edit_reparse_ms_p50"],
            bb["edit_reparse_ms_p99"],
        ],
    )
    a.set_ylabel("ms")
    a.set_title(f"Context engine, {bb['lines']}-line file")
    a.tick_params(axis="x", rotation=20)
    if result.get("replay"):
        labels = [
            f"step {r['step_lines']}" + (" (sliding)" if r["step_lines"] == 1 else " (stable)")
            for r in result["replay"]
        ]
        b.bar(labels, [100 * r["hit_rate"] for r in result["replay"]])
        b.set_ylabel("prompt tokens from prefix cache (%)")
        b.set_title("Typing replay, vLLM prefix cache")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--smoke", action="store_true", help="few samples, short replay")
    ap.add_argument("--no-engine", action="store_true", help="skip the vLLM replay")
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    from moe_lsp.inference.model_store import default_model_dir, prepare_default_model
    from moe_lsp.inference.tokenizer import FolderTokenizer

    model = default_model_dir()
    prepare_default_model(model)
    tok = FolderTokenizer.from_folder(model)
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine()},
        "build": bench_build(tok, 30 if args.smoke else args.samples),
    }
    b = result["build"]
    print(
        f"context build on a {b['lines']}-line file ({b['samples']} cursors, 5 other files): "
        f"p50 {b['build_ms_p50']:.2f} ms, p99 {b['build_ms_p99']:.2f} ms "
        f"(first call, indexing the other files: {b['build_ms_cold']:.0f} ms)"
    )
    print(
        f"edit + incremental re-parse: p50 {b['edit_reparse_ms_p50']:.2f} ms, "
        f"p99 {b['edit_reparse_ms_p99']:.2f} ms"
    )
    if not args.no_engine:
        typed = TYPED[:40] if args.smoke else TYPED
        result["replay"] = asyncio.run(run_engine_part(typed))
        for r in result["replay"]:
            kind = "sliding window" if r["step_lines"] == 1 else "stable window"
            print(
                f"typing replay, {kind} (step {r['step_lines']}): {r['requests']} requests, "
                f"prefix-cache hit rate {100 * r['hit_rate']:.1f}% "
                f"({r['cached_tokens']}/{r['prompt_tokens']} prompt tokens)"
            )
        before, after = result["replay"]
        if before["hit_rate"]:
            print(f"ratio stable/sliding: {after['hit_rate'] / before['hit_rate']:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "context.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "context.png")
    print(f"saved {out / 'context.json'} and {out / 'context.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
