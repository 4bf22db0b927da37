"""Next-edit quality on edit pairs made from standard-library code, through the server's path.

Each task (tests/bench/next_edit_tasks.py) opens a document in a session as an editor's, sends
the first edit of a pair as a whole-document change (`Session.change_document`, which records
it in the edit log), and asks `lsp/next_edit.py: predict` for the next edit. Scores: offered (a
suggestion came back) and exact (the edit, applied, gives the document with both edits), for
the suggestion ("checked": after the tree-sitter check) and for the model's window diff before
that check ("raw": `prompts/next_edit.py: to_edit` on the same completion).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from tests.bench.editor_session import editor_session, main_with_table
from tests.bench.eval_humaneval import machine
from tests.bench.next_edit_tasks import (
    KINDS,
    SEED,
    STDLIB_FILES,
    EditTask,
    choose,
    stdlib_candidates,
)
from tests.bench.report import Table, median, save_results

ROOT = Path(__file__).resolve().parents[2]
SMOKE_LIMIT = 6
"""Tasks in --smoke (two of each kind)."""
DEFAULT_LIMIT = 90
"""Tasks without --limit (a fixed stride over each kind)."""
VARIANTS = ("raw", "checked")
METRICS = (("offered", "offered"), ("exact", "exact"), ("right line", "right_line"))
"""(label, key) of the metrics measured for the raw and the checked edit."""
ALL = "all"


def log(message: str) -> None:
    """One progress line on stderr (stdout is kept for the table)."""
    print(f"[eval-next-edit] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"tasks in all, shared over the kinds (a fixed stride; default {DEFAULT_LIMIT})",
    )
    p.add_argument("--model", default=None, help="model folder (default: the prepared model)")
    p.add_argument(
        "--profile", default=None, help="force a prompt profile (default: as the server)"
    )
    p.add_argument("--seed", type=int, default=SEED, help="seed of the new names and arguments")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    p.add_argument("--smoke", action="store_true", help=f"{SMOKE_LIMIT} tasks, two per kind")
    p.add_argument("--compare", type=Path, default=None, help="an earlier results JSON")
    p.add_argument("--progress", type=int, default=5, help="a progress line every N tasks")
    p.add_argument(
        "--timeout-seconds",
        type=float,
        default=None,
        help="the completion timeout (default: an editor's; past it the window is cut short)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.limit = min(args.limit or SMOKE_LIMIT, SMOKE_LIMIT)
    elif args.limit is None:
        args.limit = DEFAULT_LIMIT
    if args.limit < 1:
        p.error("--limit must be at least 1")
    if args.profile:
        from moe_lsp.prompts.profiles import profile_by_name

        try:
            profile_by_name(args.profile)
        except ValueError as err:
            p.error(str(err))
    if args.compare is not None and not args.compare.is_file():
        p.error(f"--compare: no such file {args.compare}")
    return args


# -- scoring (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """An edit as str offsets: replace `text[start:end]` with `new_text`."""

    start: int
    end: int
    new_text: str


def apply_edit(text: str, edit: Edit) -> str:
    return text[: edit.start] + edit.new_text + text[edit.end :]


def line_of(text: str, offset: int) -> int:
    """0-based line of a str offset."""
    return text.count("\n", 0, offset)


def grade(task: EditTask, edit: Edit | None) -> dict[str, bool]:
    """offered, exact (applied to the edited text it gives the expected one) and right line
    (the edit's lines hold the second edit's line, and after it that line is as expected, with
    as many lines as expected: other changes may come with it)."""
    if edit is None:
        return {"offered": False, "exact": False, "right_line": False}
    after = apply_edit(task.edited, edit)
    first, last = line_of(task.edited, edit.start), line_of(task.edited, edit.end)
    lines = after.split("\n")
    right_line = (
        first <= task.line <= last
        and len(lines) == task.expected.count("\n") + 1
        and lines[task.line] == task.expected_line
    )
    return {"offered": True, "exact": after == task.expected, "right_line": right_line}


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind and for all: tasks, each metric raw and checked (shares), refusals, p50."""
    out: dict[str, dict[str, Any]] = {}
    for kind in (*KINDS, ALL):
        mine = [r for r in rows if kind in (ALL, r["kind"])]
        if not mine:
            continue
        n = len(mine)
        s: dict[str, Any] = {"tasks": n}
        for _, key in METRICS:
            for variant in VARIANTS:
                s[f"{key}_{variant}"] = round(sum(bool(r[f"{key}_{variant}"]) for r in mine) / n, 4)
        s["refused_by_check"] = sum(
            1 for r in mine if r["offered_raw"] and not r["offered_checked"]
        )
        s["exact_refused"] = sum(1 for r in mine if r["exact_raw"] and not r["exact_checked"])
        s["median_latency_ms"] = median([r["latency_ms"] for r in mine])
        s["median_generated_tokens"] = median([r["generated_tokens"] for r in mine])
        reasons = sorted({r["finish_reason"] for r in mine})
        s["finish_reasons"] = {f: sum(r["finish_reason"] == f for r in mine) for f in reasons}
        out[kind] = s
    return out


def table(summary: dict[str, dict[str, Any]], title: str = "Next-edit suggestions") -> str:
    """The results as a text table."""
    header = ["kind", "tasks"]
    header += [f"{label} {v}" for label, _ in METRICS for v in VARIANTS]
    header += ["refused", "p50 ms"]
    rows = []
    for kind, s in summary.items():
        row = [kind, str(s["tasks"])]
        row += [f"{s[f'{key}_{v}']:.1%}" for _, key in METRICS for v in VARIANTS]
        lat = s["median_latency_ms"]
        row += [str(s["refused_by_check"]), "-" if lat is None else f"{lat:.0f}"]
        rows.append(row)
    note = "refused: raw edits the tree-sitter check did not offer"
    return Table(title, header, rows, note=note).render()


def compare(old_path: Path, summary: dict[str, dict[str, Any]]) -> str:
    """Deltas of each metric against an earlier results file."""
    old = json.loads(old_path.read_text(encoding="utf-8"))
    old_summary = old.get("summary", {})
    lines = [f"compared with {old_path} ({old.get('date', '?')}, {old.get('profile', '?')})"]
    lines.append(f"{'kind':<8} {'metric':<22} {'old':>8} {'new':>8} {'delta':>8}")
    keys = [(f"{label} {v}", f"{key}_{v}") for label, key in METRICS for v in VARIANTS]
    keys.append(("median latency ms", "median_latency_ms"))
    for kind, s in summary.items():
        o = old_summary.get(kind)
        if o is None:
            lines.append(f"{kind:<8} (not in the old file)")
            continue
        if o.get("tasks") != s["tasks"]:
            lines.append(f"{kind:<8} warning: {o.get('tasks')} tasks then, {s['tasks']} now")
        for label, key in keys:
            a, b = o.get(key), s.get(key)
            if a is None or b is None:
                continue
            lines.append(f"{kind:<8} {label:<22} {a:>8.3f} {b:>8.3f} {b - a:>+8.3f}")
    return "\n".join(lines)


def draw(summary: dict[str, dict[str, Any]], title: str) -> Any:
    """A drawing for `report.save_plot`: raw against checked bars per metric, per kind."""

    def paint(axes: Any) -> None:
        ax = axes[0][0]
        kinds = list(summary)
        bars = [(key, v) for _, key in METRICS for v in VARIANTS]
        width = 0.8 / len(bars)
        colors = ("#bbbbbb", "#1f77b4", "#999999", "#ff7f0e", "#777777", "#2ca02c")
        for i, ((key, variant), color) in enumerate(zip(bars, colors, strict=True)):
            xs = [k + (i - (len(bars) - 1) / 2) * width for k in range(len(kinds))]
            values = [summary[kind][f"{key}_{variant}"] for kind in kinds]
            drawn = ax.bar(xs, values, width, label=f"{key} {variant}", color=color)
            ax.bar_label(drawn, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(kinds)), [f"{k} ({summary[k]['tasks']})" for k in kinds])
        ax.set_ylim(0, 1.35)
        ax.set_ylabel("share of tasks")
        ax.set_title(title)
        ax.legend(fontsize=8, ncols=3, loc="upper center")

    return paint


# -- predictions ------------------------------------------------------------------------------


@contextlib.contextmanager
def recording_completions(seen: list[Any]) -> Any:
    """While open, every Outcome `lsp/next_edit.py` gets from `complete` is appended to `seen`
    (the module's own reference to `complete` is wrapped; nothing else changes)."""
    from moe_lsp.lsp import next_edit

    original = next_edit.complete

    async def complete(*args: Any, **kwargs: Any) -> Any:
        outcome = await original(*args, **kwargs)
        seen.append(outcome)
        return outcome

    next_edit.complete = complete
    try:
        yield
    finally:
        next_edit.complete = original


async def predict_task(session: Any, task: EditTask) -> dict[str, Any]:
    """One task as an editor makes it: open the text before the first edit, send the text
    after it, ask for the next edit (`lsp.next_edit.predict`), close the document."""
    from moe_lsp.lsp.next_edit import predict
    from moe_lsp.prompts.next_edit import prompt_text, to_edit

    uri = f"file:///{task.path}"
    session.documents.open(uri, "python", 1, task.before)
    seen: list[Any] = []
    try:
        session.change_document(uri, 2, [(None, task.edited)])
        doc = session.documents.get(uri)
        assert doc is not None and doc.text == task.edited
        hunks = session.edit_logs.hunks(uri)
        made = prompt_text(session.display_path(uri), doc.text, hunks, doc.spec.line_comment or "#")
        t0 = time.perf_counter()
        with recording_completions(seen):
            found = await predict(session, uri)
        latency_ms = (time.perf_counter() - t0) * 1000
        checked = None
        if found is not None:
            enc = session.documents.encoding
            checked = Edit(
                doc.offset_at(*found.start, enc), doc.offset_at(*found.end, enc), found.new_text
            )
    finally:
        session.close_document(uri)
    outcome = seen[-1] if seen else None
    raw = None
    if outcome is not None and made is not None:
        _, start, end = made
        edit = to_edit(task.edited, start, end, outcome.text, hunks)
        raw = Edit(edit.start, edit.end, edit.new_text) if edit is not None else None
    timings = outcome.timings if outcome is not None else None
    row: dict[str, Any] = {
        "task_id": task.task_id,
        "kind": task.kind,
        "line": task.line + 1,
        "expected_line": task.expected_line,
        "hunks": len(hunks),
        "completed": outcome is not None,
        "finish_reason": outcome.finish_reason if outcome is not None else "failed",
        "written": outcome.text if outcome is not None else "",
        "raw_edit": None if raw is None else vars(raw),
        "checked_edit": None if checked is None else vars(checked),
        "latency_ms": round(latency_ms, 1),
        "first_token_ms": None
        if timings is None or timings.first_token_ms is None
        else round(timings.first_token_ms, 1),
        "prompt_tokens": timings.prompt_tokens if timings is not None else 0,
        "generated_tokens": timings.tokens if timings is not None else 0,
    }
    for variant, edit in (("raw", raw), ("checked", checked)):
        for key, value in grade(task, edit).items():
            row[f"{key}_{variant}"] = value
    return row


def settings_of(args: argparse.Namespace) -> Any:
    """The server settings of the run (`--profile`, `--model`, `--timeout-seconds`)."""
    from moe_lsp.inference.config import EngineConfig
    from moe_lsp.lsp.settings import CompletionSettings, ServerSettings

    completion = CompletionSettings(profile=args.profile or "auto")
    if args.timeout_seconds is not None:
        completion = replace(completion, timeout_seconds=args.timeout_seconds)
    return ServerSettings(engine=EngineConfig(model=args.model), completion=completion)


async def generate(args: argparse.Namespace, tasks: list[EditTask]) -> dict[str, Any]:
    """Start the engine, predict the next edit of every task, stop it."""
    rows: list[dict[str, Any]] = []
    settings = settings_of(args)
    async with editor_session(settings, log) as (session, facts):
        started = time.monotonic()
        for i, task in enumerate(tasks, start=1):
            rows.append(await predict_task(session, task))
            if i % max(args.progress, 1) == 0 or i == len(tasks):
                log(
                    f"{i}/{len(tasks)} predicted, "
                    f"{sum(r['offered_checked'] for r in rows)} offered, "
                    f"{sum(r['exact_checked'] for r in rows)} exact, "
                    f"median {median([r['latency_ms'] for r in rows]) or 0:.0f} ms, "
                    f"{time.monotonic() - started:.0f} s"
                )
    facts = {
        **facts,
        "load_seconds": round(facts["load_seconds"], 1),
        "timeout_seconds": settings.completion.timeout_seconds,
    }
    return {"rows": rows, **facts, "path": "lsp.next_edit.predict (lsp.completion.complete)"}


async def run(args: argparse.Namespace, out: TextIO) -> int:
    t0 = time.monotonic()
    tasks = choose(stdlib_candidates(STDLIB_FILES, args.seed), args.limit)
    log("tasks: " + ", ".join(f"{k} {sum(t.kind == k for t in tasks)}" for k in KINDS))
    generated = await generate(args, tasks)
    rows = generated.pop("rows")
    summary = summarize(rows)
    now = datetime.now(UTC)
    result = {
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python -m tests.bench.eval_next_edit", *sys.argv[1:]]),
        "smoke": args.smoke,
        "limit": args.limit,
        "seed": args.seed,
        "files": list(STDLIB_FILES),
        **generated,
        "machine": machine(),
        "scoring": {
            "offered": "an edit came back",
            "exact": "the edit applied to the document after the first edit gives exactly the "
            "document after both",
            "right_line": "the edit covers the second edit's line and leaves it as expected",
            "raw": "prompts.next_edit.to_edit on the completion predict got (before the "
            "tree-sitter check)",
            "checked": "the Suggestion lsp.next_edit.predict returned",
        },
        "wall_seconds": round(time.monotonic() - t0, 1),
        "summary": summary,
        "rows": rows,
    }
    name = f"eval_next_edit{'-smoke' if args.smoke else ''}-{now:%Y%m%d-%H%M%S}"
    title = f"Next edit, {Path(result['model']).name}, {result['profile']}"
    json_path, png_path = save_results(
        result, args.out, name, draw(summary, title), ncols=1, nrows=1
    )
    say = partial(print, file=out, flush=True)
    say()
    say(table(summary, f"Next-edit suggestions: {Path(result['model']).name}, {result['profile']}"))
    s = summary[ALL]
    say(
        f"finish reasons {s['finish_reasons']} (timeout {result['timeout_seconds']:g} s); "
        f"median {s['median_generated_tokens']:.0f} tokens written; exact edits refused by "
        f"the check {s['exact_refused']}"
    )
    if args.compare is not None:
        say()
        say(compare(args.compare, summary))
    say(f"\nresults {json_path}\nplot    {png_path}")
    say(f"wall time {result['wall_seconds']:.0f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return main_with_table(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
