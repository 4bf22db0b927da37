"""Routed-experts counting (inference/routing.py) and the moe/experts body (lsp/experts.py)."""

from __future__ import annotations

import numpy as np
import pytest

from moe_lsp.inference.routing import RoutingCounter, count, jain, max_over_mean, summarize
from moe_lsp.lsp.experts import REMOTE, experts_body, heatmap, table, to_wire


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        ([5, 5, 5, 5], 1.0),
        ([8, 0, 0, 0], 0.25),
        ([2, 2, 0, 0], 0.5),
        ([3, 1], 16 / 20),
        ([], None),
        ([0, 0], None),
    ],
)
def test_jain(loads: list[int], expected: float | None) -> None:
    got = jain(loads)
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("loads", "expected"),
    [([5, 5, 5, 5], 1.0), ([8, 0, 0, 0], 4.0), ([3, 1], 1.5), ([], None), ([0, 0], None)],
)
def test_max_over_mean(loads: list[int], expected: float | None) -> None:
    got = max_over_mean(loads)
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("routed", "experts", "expected"),
    [
        # [tokens, layers, top_k]
        ([[[0], [1]], [[0], [3]], [[2], [3]]], 4, [[2, 0, 1, 0], [0, 1, 0, 2]]),
        ([[[0, 1]], [[1, 2]]], 3, [[1, 2, 1]]),
        (np.zeros((0, 2, 1), dtype=np.uint8), 4, [[0, 0, 0, 0], [0, 0, 0, 0]]),
    ],
)
def test_count(routed: object, experts: int, expected: list[list[int]]) -> None:
    assert count(routed, experts).tolist() == expected


@pytest.mark.parametrize(
    ("routed", "message"),
    [([[0, 1]], r"\[tokens, layers, top_k\]"), ([[[4]]], r"expert ids must be in \[0, 4\)")],
)
def test_count_rejects(routed: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        count(routed, 4)


def test_counter_window_drops_the_oldest() -> None:
    counter = RoutingCounter(experts=2, window=2)
    for expert in (0, 1, 1):
        counter.add([[[expert]]])  # one token, one layer
    assert counter.matrix().tolist() == [[0, 2]]
    assert counter.requests_in_window() == 2
    assert counter.requests_seen == 3


def test_counter_rejects_wrong_width() -> None:
    counter = RoutingCounter(experts=4)
    with pytest.raises(ValueError, match=r"counts must be \[layers, 4\]"):
        counter.add_counts(np.zeros((2, 3), dtype=np.int64))


def test_summarize_and_wire() -> None:
    report = summarize(np.array([[4, 4], [8, 0]]), requests=3, window=10)
    assert report["tokens"] == 8
    assert report["worst_max_over_mean"] == pytest.approx(2.0)
    assert report["worst_jain"] == pytest.approx(0.5)
    assert report["mean_jain"] == pytest.approx(0.75)
    wire = to_wire({**report, "available": True})
    assert wire["layers"][1]["maxOverMean"] == pytest.approx(2.0)
    assert "worstJain" in wire


class _Remote:
    pass


class _Local:
    def routed_experts(self) -> dict:
        return {"available": True, "experts": 2, "layers": [], "mean_jain": None}


@pytest.mark.parametrize(
    ("engine", "ready", "available", "message"),
    [
        (None, False, False, "still loading"),
        (_Remote(), True, False, REMOTE),
        (_Local(), True, True, None),
    ],
)
def test_experts_body(engine: object, ready: bool, available: bool, message: str | None) -> None:
    body = experts_body(engine, ready)
    assert body["available"] is available
    if message:
        assert message in body["message"]
        assert table(body) == body["message"]


def test_table_and_heatmap(tmp_path) -> None:
    body = to_wire({**summarize(np.array([[3, 1], [2, 2]]), 1, 8), "available": True})
    text = table(body)
    assert text.splitlines()[1].split()[:3] == ["0", "3", "1"]
    assert "1.50" in text  # layer 0's max/mean
    png = heatmap(body, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
