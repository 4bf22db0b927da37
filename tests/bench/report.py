"""Owns benchmark figures and their output: percentiles, ratios, text tables, JSON and PNG files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None when empty.

    NaN values are ignored. percentile([1, 2, 3, 4], 50) == 2.5.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(v for v in values if v is not None and not math.isnan(v))
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def median(values: Sequence[float]) -> float | None:
    """The 50th percentile."""
    return percentile(values, 50)


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, median, p95, min and max of `values` (for JSON)."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return {
        "n": len(clean),
        "median": median(clean),
        "p95": percentile(clean, 95),
        "min": min(clean) if clean else None,
        "max": max(clean) if clean else None,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is not > 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def fmt_ratio(value: float | None) -> str:
    """'2.50x', '0.42x', '-' for missing; large ratios without decimals ('120x')."""
    if value is None or math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def fmt_ms(value: float | None) -> str:
    """Milliseconds for a table: '-' when missing, whole ms from 10 ms, one decimal below."""
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}"


def fmt_pct(value: float | None) -> str:
    """A signed percentage ('+12.3%'), '-' when missing."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.1f}%"


def overhead(total: float | None, base: float | None) -> tuple[float | None, float | None]:
    """(total - base in ms, the same as a percentage of base); Nones when either is missing."""
    if total is None or base is None:
        return None, None
    diff = total - base
    return diff, (100 * diff / base if base > 0 else None)


@dataclass
class Table:
    """A plain-text table with a title, a header row and aligned columns."""

    title: str
    header: Sequence[str]
    rows: list[Sequence[str]]
    note: str = ""

    def render(self) -> str:
        """The table as text (first column left-aligned, the rest right-aligned)."""
        cells = [list(self.header), *[list(r) for r in self.rows]]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.header))]

        def line(row: Sequence[str]) -> str:
            out = []
            for i, cell in enumerate(row):
                text = str(cell)
                out.append(text.ljust(widths[i]) if i == 0 else text.rjust(widths[i]))
            return "  ".join(out).rstrip()

        parts = [self.title, line(self.header), "  ".join("-" * w for w in widths)]
        parts += [line(r) for r in self.rows]
        if self.note:
            parts.append(self.note)
        return "\n".join(parts)


def render_tables(tables: Sequence[Table]) -> str:
    """Tables separated by a blank line."""
    return "\n\n".join(t.render() for t in tables if t.rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_json"):
        return _jsonable(value.to_json())
    return value


def save_json(data: Mapping[str, Any], path: Path) -> Path:
    """Write `data` as indented JSON (NaN/inf become null), atomically; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_plot(draw: Callable[[Any], None], path: Path, *, ncols: int = 2, nrows: int = 2) -> Path:
    """Draw a figure of `nrows` x `ncols` axes with `draw(axes)` (matplotlib Agg), save as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.2 * nrows), squeeze=False)
    try:
        draw(axes)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def save_results(
    data: Mapping[str, Any],
    out_dir: Path,
    name: str,
    draw: Callable[[Any], None] | None = None,
    *,
    ncols: int = 2,
    nrows: int = 2,
) -> tuple[Path, Path | None]:
    """Save `<out_dir>/<name>.json` and, with `draw`, `<out_dir>/<name>.png`."""
    json_path = save_json(data, out_dir / f"{name}.json")
    png = None
    if draw is not None:
        png = save_plot(draw, out_dir / f"{name}.png", ncols=ncols, nrows=nrows)
    return json_path, png
