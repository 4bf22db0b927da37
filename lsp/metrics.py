"""Local latency figures per completion stage: bounded samples and their percentiles."""

from __future__ import annotations

from collections import deque

WINDOW = 1000
"""Samples kept per stage (the most recent ones)."""


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of `values` (q in 0..1); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Latencies:
    """Recent latencies per stage, in milliseconds; nothing leaves the machine."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._samples: dict[str, deque[float]] = {}

    def add(self, stage: str, ms: float | None) -> None:
        """Record one sample (None is ignored)."""
        if ms is None:
            return
        self._samples.setdefault(stage, deque(maxlen=self.window)).append(ms)

    def count(self, stage: str) -> int:
        """Samples held for `stage`."""
        return len(self._samples.get(stage, ()))

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """{stage: {count, p50, p95, p99}}."""
        out: dict[str, dict[str, float | int | None]] = {}
        for stage, samples in self._samples.items():
            values = list(samples)
            out[stage] = {
                "count": len(values),
                "p50": percentile(values, 0.5),
                "p95": percentile(values, 0.95),
                "p99": percentile(values, 0.99),
            }
        return out
