"""Shutdown: how long the real server takes to answer `shutdown`, and to be gone after `exit`,
at each moment (tests/bench/shutdown_probe.py): `initialized` still waiting for the client,
the engine loading, a completion generating, a hot streak running, a prefetch running, idle.

Starts the server with the real engine `--runs` times per moment; each time checks that no
engine process is left. Saves JSON and a plot in bench-results/."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .report import median, save_results
from .shutdown_probe import MOMENTS, probe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1, help="runs per moment")
    ap.add_argument("--moments", default=",".join(MOMENTS), help="comma-separated")
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    moments = [m.strip() for m in args.moments.split(",") if m.strip()]
    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for moment in moments:
            rows[moment] = []
            for run in range(args.runs):
                out = probe(moment, Path(tmp) / f"{moment}-{run}.log")
                rows[moment].append(out.as_dict())
    print(f"{'moment':<14}{'answered':>10}{'gone after exit':>17}{'engine gone':>13}  exit  left")
    summary: dict[str, dict[str, Any]] = {}
    failed = False
    for moment, runs in rows.items():

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [r[key] - (r["exit_sent_ms"] or 0) for r in runs if r[key] is not None]
            return median(values) if values else None

        answered = median([r["shutdown_answered_ms"] for r in runs if r["shutdown_answered_ms"]])
        gone, engine_gone = med("process_gone_ms"), med("engine_gone_ms")
        left = sum(len(r["processes_left"]) for r in runs)
        codes = [r["exit_code"] for r in runs]
        failed |= left > 0 or any(c != 0 for c in codes) or gone is None or gone > 10_000
        summary[moment] = {
            "answered_ms": answered,
            "gone_after_exit_ms": gone,
            "engine_gone_after_exit_ms": engine_gone,
            "processes_left": left,
            "exit_codes": codes,
        }

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f} ms"

        print(
            f"{moment:<14}{ms(answered):>10}{ms(gone):>17}{ms(engine_gone):>13}  "
            f"{','.join(map(str, codes)):<5} {left}"
        )

    def draw(axes: Any) -> None:
        ax = axes[0][0]
        names = list(summary)
        xs = range(len(names))
        ax.bar(
            [x - 0.2 for x in xs],
            [summary[n]["answered_ms"] or 0 for n in names],
            0.4,
            label="shutdown answered (after shutdown)",
        )
        ax.bar(
            [x + 0.2 for x in xs],
            [summary[n]["gone_after_exit_ms"] or 0 for n in names],
            0.4,
            label="server gone (after exit)",
        )
        ax.axhline(10_000, color="red", linestyle="--", label="10 s")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names)
        ax.set_ylabel("ms")
        ax.legend()

    data = {"runs": rows, "summary": summary}
    json_path, png = save_results(data, Path(args.out), "shutdown", draw, ncols=1, nrows=1)
    print(f"saved {json_path} and {png}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
