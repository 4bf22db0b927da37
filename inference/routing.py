"""Routed-experts counting: per layer, the tokens each expert received over a window of requests."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_WINDOW = 256
"""Completions whose routing the counter keeps (older ones leave the window)."""


def jain(loads: Sequence[float]) -> float | None:
    """Jain's fairness index of `loads`: 1 when even, 1/n when one takes all; None when empty."""
    n = len(loads)
    total = float(sum(loads))
    squares = float(sum(x * x for x in loads))
    if n == 0 or squares == 0.0:
        return None
    return total * total / (n * squares)


def max_over_mean(loads: Sequence[float]) -> float | None:
    """The busiest expert's load over the mean load (1 when even, n when one takes all)."""
    if not loads:
        return None
    mean = float(sum(loads)) / len(loads)
    return None if mean == 0.0 else float(max(loads)) / mean


def count(routed: Any, experts: int) -> np.ndarray:
    """Tokens per (layer, expert) of one request's routing `[tokens, layers, top_k]`."""
    arr = np.asarray(routed)
    if arr.ndim != 3:
        raise ValueError(f"routed experts must be [tokens, layers, top_k], got shape {arr.shape}")
    layers = arr.shape[1]
    out = np.zeros((layers, experts), dtype=np.int64)
    if arr.shape[0] == 0:
        return out
    ids = arr.astype(np.int64)
    if ids.min() < 0 or ids.max() >= experts:
        raise ValueError(f"expert ids must be in [0, {experts}), got {ids.min()}..{ids.max()}")
    for layer in range(layers):
        out[layer] = np.bincount(ids[:, layer, :].ravel(), minlength=experts)
    return out


@dataclass(frozen=True)
class LayerLoad:
    """One layer's load: tokens per expert and how uneven they are."""

    layer: int
    tokens: list[int]
    max_over_mean: float | None
    jain: float | None


class RoutingCounter:
    """Sums per-request routing over the last `window` requests (thread-safe, bounded)."""

    def __init__(self, experts: int, window: int = DEFAULT_WINDOW) -> None:
        if experts <= 0 or window <= 0:
            raise ValueError("experts and window must be positive")
        self.experts = experts
        self.window = window
        self._items: deque[np.ndarray] = deque()
        self._total: np.ndarray | None = None
        self._lock = threading.Lock()
        self.requests_seen = 0

    def add(self, routed: Any) -> None:
        """Count one request's routing `[tokens, layers, top_k]`."""
        self.add_counts(count(routed, self.experts))

    def add_counts(self, counts: np.ndarray) -> None:
        """Add one item of tokens per (layer, expert)."""
        if counts.ndim != 2 or counts.shape[1] != self.experts:
            raise ValueError(f"counts must be [layers, {self.experts}], got {counts.shape}")
        with self._lock:
            if self._total is None or self._total.shape != counts.shape:
                self._items.clear()
                self._total = np.zeros_like(counts)
            self._items.append(counts)
            self._total += counts
            while len(self._items) > self.window:
                self._total -= self._items.popleft()
            self.requests_seen += 1

    def matrix(self) -> np.ndarray:
        """Tokens per (layer, expert) over the window; shape (0, experts) before any request."""
        with self._lock:
            if self._total is None:
                return np.zeros((0, self.experts), dtype=np.int64)
            return self._total.copy()

    def requests_in_window(self) -> int:
        with self._lock:
            return len(self._items)

    def report(self) -> dict[str, Any]:
        """Per-layer loads and imbalance, and the whole model's mean/worst figures (JSON-ready)."""
        return summarize(self.matrix(), self.requests_in_window(), self.window)


def summarize(matrix: np.ndarray, requests: int, window: int) -> dict[str, Any]:
    """The report of a (layers x experts) token-count matrix."""
    layers = [
        LayerLoad(i, [int(x) for x in row], max_over_mean(row.tolist()), jain(row.tolist()))
        for i, row in enumerate(matrix)
    ]
    ratios = [x.max_over_mean for x in layers if x.max_over_mean is not None]
    fairness = [x.jain for x in layers if x.jain is not None]
    return {
        "experts": int(matrix.shape[1]),
        "layers": [vars(x) for x in layers],
        "requests": requests,
        "window": window,
        "tokens": int(matrix[0].sum()) if len(matrix) else 0,
        "mean_max_over_mean": float(np.mean(ratios)) if ratios else None,
        "worst_max_over_mean": max(ratios) if ratios else None,
        "mean_jain": float(np.mean(fairness)) if fairness else None,
        "worst_jain": min(fairness) if fairness else None,
    }


UNAVAILABLE = (
    "This engine cannot report routed experts: {why}. vLLM's own enable_return_routed_experts "
    "needs its Model Runner V2, which needs Triton with a CPU backend on CPU builds."
)


class RoutingProbe:
    """The in-process engine's side of `routing_worker.RoutingExtension`: starts the gate hooks
    at the first request, takes their counts when a request ends (one take at a time), and
    keeps them in a `RoutingCounter` (each take is one item of the window)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self.counter: RoutingCounter | None = None
        self.shape: dict[str, int] | None = None
        self.error: str | None = None
        self._starting: Any = None
        self._taking = False
        self._tasks: set[Any] = set()

    async def ensure_started(self, llm: Any) -> None:
        """Install the hooks once (later calls wait for the first)."""
        import asyncio

        if self.counter is not None or self.error is not None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start(llm))
        await asyncio.shield(self._starting)

    async def _start(self, llm: Any) -> None:
        try:
            shapes = await llm.collective_rpc("moe_routing_start")
            shape = shapes[0]
            if not shape.get("layers") or not shape.get("experts"):
                self.error = "the model has no MoE gates"
                return
            self.shape = shape
            self.counter = RoutingCounter(int(shape["experts"]), self.window)
        except Exception as err:  # no extension in the worker, or a build without the RPC
            self.error = f"the worker has no routing hooks ({type(err).__name__})"

    def take_soon(self, llm: Any) -> None:
        """`take` in the background (a request's end must not wait for it)."""
        import asyncio

        if self.counter is None or self._taking:
            return
        task = asyncio.ensure_future(self.take(llm))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def take(self, llm: Any) -> None:
        """Move the worker's counts since the last take into the window (skipped when a take is
        already running: the next one collects these tokens too)."""
        if self.counter is None or self._taking:
            return
        self._taking = True
        try:
            rows = (await llm.collective_rpc("moe_routing_take"))[0]
            if rows and any(any(r) for r in rows):
                self.counter.add_counts(np.asarray(rows, dtype=np.int64))
        except Exception:
            pass  # the engine is stopping; the window keeps what it had
        finally:
            self._taking = False

    def report(self) -> dict[str, Any]:
        """The window's report, or {"available": False, "message": ...}."""
        if self.counter is None:
            why = self.error or "no request has run yet"
            if self.error is None:
                return {"available": False, "message": "No completion has run yet."}
            return {"available": False, "message": UNAVAILABLE.format(why=why)}
        out = self.counter.report()
        out["available"] = True
        out["top_k"] = (self.shape or {}).get("top_k", 1)
        out["source"] = "gate hooks in the vLLM worker (prompt and generated tokens)"
        return out
