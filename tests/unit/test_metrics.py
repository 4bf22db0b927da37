"""Tables of cases for latency percentiles and their bound."""

from __future__ import annotations

import pytest

from moe_lsp.lsp.metrics import Latencies, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([5.0], 0.99, 5.0),
        ([1.0, 2.0, 3.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([3.0, 1.0, 2.0], 0.0, 1.0),
        ([3.0, 1.0, 2.0], 1.0, 3.0),
    ],
)
def test_percentile(values, q, expected) -> None:
    assert percentile(values, q) == expected


def test_window_is_bounded_and_none_ignored() -> None:
    lat = Latencies(window=10)
    for i in range(100):
        lat.add("total", float(i))
    lat.add("total", None)
    assert lat.count("total") == 10
    s = lat.summary()["total"]
    assert s["count"] == 10
    assert 90.0 <= s["p50"] <= 99.0  # only the 10 most recent samples (90..99) are kept
    assert s["p99"] == 99.0
