"""The shared-vs-standalone soak's pure figures: servers that fit, editors per server, memory
projection, ratios, failures and the table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.soak_compare import (
    assign_editors,
    comparison_table,
    duration,
    failures,
    fit_servers,
    latency_summary,
    project_memory,
)


@pytest.mark.parametrize(
    ("first", "available", "editors", "reserve", "expected"),
    [
        (3500, 20000, 8, 3000, 5),  # 1 running + floor(17000 / 3500) = 4 more
        (3500, 19999, 8, 3000, 5),
        (3500, 6499, 8, 3000, 1),  # not one more fits
        (3500, 6500, 8, 3000, 2),
        (3500, 1000, 8, 3000, 1),  # less than the reserve: still the first one
        (1000, 100000, 8, 3000, 8),  # at most one per editor
        (1000, 100000, 2, 3000, 2),
        (0, 100000, 8, 3000, 1),  # no measurement: only the first
    ],
)
def test_fit_servers(
    first: float, available: float, editors: int, reserve: float, expected: int
) -> None:
    assert fit_servers(first, available, editors, reserve) == expected


def test_fit_servers_needs_an_editor() -> None:
    with pytest.raises(ValueError):
        fit_servers(3500, 20000, 0)


@pytest.mark.parametrize(
    ("editors", "servers", "expected"),
    [
        (8, 8, [[0], [1], [2], [3], [4], [5], [6], [7]]),
        (8, 1, [[0, 1, 2, 3, 4, 5, 6, 7]]),
        (8, 5, [[0, 5], [1, 6], [2, 7], [3], [4]]),
        (5, 2, [[0, 2, 4], [1, 3]]),
        (2, 1, [[0, 1]]),
    ],
)
def test_assign_editors(editors: int, servers: int, expected: list[list[int]]) -> None:
    got = assign_editors(editors, servers)
    assert got == expected
    assert sorted(i for ids in got for i in ids) == list(range(editors))


@pytest.mark.parametrize(("editors", "servers"), [(2, 3), (8, 0)])
def test_assign_editors_refuses(editors: int, servers: int) -> None:
    with pytest.raises(ValueError):
        assign_editors(editors, servers)


@pytest.mark.parametrize(
    ("per_server", "servers", "expected"),
    [(3500.0, 8, 28000.0), (3500.0, 1, 3500.0), (None, 8, None), (0.0, 8, 0.0)],
)
def test_project_memory(per_server: float | None, servers: int, expected: float | None) -> None:
    assert project_memory(per_server, servers) == expected


def test_latency_summary() -> None:
    samples = [(float(t), float(ms)) for t, ms in enumerate(range(1, 101))]
    got = latency_summary(samples)
    assert got["p50_ms"] == pytest.approx(50.5)
    assert got["p95_ms"] == pytest.approx(95.05)
    assert latency_summary([]) == {"p50_ms": None, "p95_ms": None}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ({"name": "shared", "unanswered": 0, "engine_running_at_end": 0}, []),
        ({"name": "shared", "unanswered": 2}, ["shared: 2 requests unanswered"]),
        (
            {"name": "standalone", "engine_running_at_end": 1, "servers_left": 3},
            [
                "standalone: 1 engine requests left running",
                "standalone: 3 server processes had to be killed",
            ],
        ),
    ],
)
def test_failures(mode: dict[str, Any], expected: list[str]) -> None:
    assert failures(mode) == expected


@pytest.mark.parametrize(("minutes", "text"), [(3, "3 min"), (1 / 3, "20 s"), (1.5, "1.5 min")])
def test_duration(minutes: float, text: str) -> None:
    assert duration(minutes) == text


def mode(name: str, servers: int, **over: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "minutes": 3,
        "editors": 8,
        "servers": servers,
        "requests": 1000,
        "in_time": 400,
        "answered": 420,
        "non_empty": 390,
        "unanswered": 0,
        "engine_running_at_end": 0,
        "engine_requests": 300,
        "p50_ms": 2.0,
        "p95_ms": 100.0,
        "sessions_max": servers if name == "standalone" else 8,
        "pss_mib_peak": 3584.0 * servers,
        "pss_mib_end": 3584.0 * servers,
        "pss_mib_per_server": 3584.0,
        "forwarder_pss_mib_end": 256.0 if name == "shared" else None,
    }
    return {**base, **over}


def rows(shared: dict[str, Any], standalone: dict[str, Any]) -> dict[str, list[str]]:
    table = comparison_table(shared, standalone)
    return {str(r[0]): [str(c) for c in r[1:]] for r in table.rows}


def test_table_ratios() -> None:
    got = rows(
        mode("shared", 1, pss_mib_peak=4096.0, p95_ms=50.0, in_time=500),
        mode("standalone", 4),
    )
    assert got["server processes"] == ["1", "4", "0.25x"]
    assert got["memory (PSS), peak"] == ["4.00 GiB", "14.00 GiB", "0.29x"]
    # projected for 8 servers: 8 x 3.5 GiB = 28 GiB; shared peak / that = 4 / 28
    assert got["standalone memory projected for 8 servers"] == ["-", "28.00 GiB", "0.14x"]
    assert got["answered before the next keystroke"] == ["500 (50 %)", "400 (40 %)", "1.25x"]
    assert got["p95 (ms)"] == ["50", "100", "0.50x"]
    assert got["p50 latency, answered (ms)"] == ["2.0", "2.0", "1.00x"]
    assert got["unanswered (must be 0)"] == ["0", "0", ""]
    assert got["sessions seen by the server"] == ["8", "1 each", ""]
    assert got["  of which connect forwarders, end"] == ["0.25 GiB", "-", ""]


def test_table_missing_figures() -> None:
    got = rows(
        mode("shared", 1, p50_ms=None, p95_ms=None, requests=0, in_time=0),
        mode("standalone", 1, p50_ms=None, pss_mib_per_server=None),
    )
    assert got["p50 latency, answered (ms)"] == ["-", "-", "-"]
    assert got["p95 (ms)"] == ["-", "100", "-"]
    assert got["standalone memory projected for 8 servers"] == ["-", "-", "-"]
    assert got["answered before the next keystroke"][0] == "0"


def test_table_render() -> None:
    table = comparison_table(mode("shared", 1), mode("standalone", 4))
    text = table.render()
    lines = text.splitlines()
    assert lines[0] == "Soak, shared vs standalone: 3 min per mode"
    assert lines[1].split() == ["shared", "standalone", "shared/standalone"]
    assert "4 `moe-lsp serve` over stdio" in text
    assert "2 per server" in text
    assert all("  " in line for line in lines[1:-1])  # aligned columns
