"""Pure figures of the shared-vs-standalone soak: how many standalone servers fit, how the
editors are spread over them, memory projection, ratios, the side-by-side table, failures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tests.bench.report import Table, fmt_ms, fmt_ratio, percentile, ratio

RESERVE_MIB = 4096.0
"""Memory left free when choosing how many standalone servers fit (OS, the bench, growth)."""


def fit_servers(
    first_pss_mib: float, available_mib: float, editors: int, reserve_mib: float = RESERVE_MIB
) -> int:
    """How many standalone servers to run: the first one (already running, `first_pss_mib`)
    plus as many more of the same size as fit in `available_mib` (measured with the first one
    running) less `reserve_mib`; at least 1, at most `editors`."""
    if editors < 1:
        raise ValueError(f"editors must be at least 1, got {editors}")
    if first_pss_mib <= 0:
        return 1
    more = math.floor(max(0.0, available_mib - reserve_mib) / first_pss_mib)
    return max(1, min(editors, 1 + more))


def assign_editors(editors: int, servers: int) -> list[list[int]]:
    """Editors spread round-robin over `servers` standalone servers (one client each):
    assign_editors(5, 2) == [[0, 2, 4], [1, 3]]."""
    if servers < 1 or editors < servers:
        raise ValueError(f"need 1 <= servers <= editors, got {servers} servers, {editors} editors")
    return [list(range(s, editors, servers)) for s in range(servers)]


def project_memory(per_server_mib: float | None, servers: int) -> float | None:
    """Memory of `servers` standalone servers at `per_server_mib` each."""
    return None if per_server_mib is None else per_server_mib * servers


def latency_summary(samples: Sequence[tuple[float, float]]) -> dict[str, float | None]:
    """p50/p95 (ms) of answered requests' latencies; samples are (seconds since start, ms)."""
    values = [ms for _, ms in samples]
    return {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}


def failures(mode: Mapping[str, Any]) -> list[str]:
    """Why a mode's run fails: unanswered requests, engine requests left running, a server
    that stayed up after the run (each must be 0)."""
    out = []
    if mode.get("unanswered", 0):
        out.append(f"{mode['name']}: {mode['unanswered']} requests unanswered")
    if mode.get("engine_running_at_end", 0):
        out.append(f"{mode['name']}: {mode['engine_running_at_end']} engine requests left running")
    if mode.get("servers_left", 0):
        out.append(f"{mode['name']}: {mode['servers_left']} server processes had to be killed")
    return out


def duration(minutes: float) -> str:
    """'3 min', '20 s', '1.5 min'."""
    return f"{minutes * 60:.0f} s" if minutes < 1 else f"{minutes:g} min"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.2f} GiB"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _share(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return _count(part)
    return f"{part:,.0f} ({100 * part / whole:.0f} %)"


def comparison_table(shared: Mapping[str, Any], standalone: Mapping[str, Any]) -> Table:
    """The side-by-side table: one row per figure, shared | standalone | shared/standalone."""
    n = shared["editors"]
    s = standalone["servers"]
    projected = project_memory(standalone.get("pss_mib_per_server"), n)
    rows: list[Sequence[str]] = [
        ("editors (LSP clients)", f"{n} ({n})", f"{standalone['editors']} ({s})", ""),
        ("server processes", "1", str(s), fmt_ratio(ratio(1, s))),
        ("sessions seen by the server", str(shared.get("sessions_max", "-")), "1 each", ""),
    ]

    def mem_row(label: str, key: str) -> Sequence[str]:
        a, b = shared.get(key), standalone.get(key)
        return (label, _mib(a), _mib(b), fmt_ratio(ratio(a, b)))

    rows += [
        mem_row("memory (PSS), peak", "pss_mib_peak"),
        mem_row("memory (PSS), end", "pss_mib_end"),
        (
            "  of which connect forwarders, end",
            _mib(shared.get("forwarder_pss_mib_end")),
            "-",
            "",
        ),
        ("standalone memory per server, peak", "-", _mib(standalone.get("pss_mib_per_server")), ""),
        (
            f"standalone memory projected for {n} servers",
            "-",
            _mib(projected),
            fmt_ratio(ratio(shared.get("pss_mib_peak"), projected)),
        ),
        (
            "requests",
            _count(shared["requests"]),
            _count(standalone["requests"]),
            fmt_ratio(ratio(shared["requests"], standalone["requests"])),
        ),
        (
            "answered before the next keystroke",
            _share(shared["in_time"], shared["requests"]),
            _share(standalone["in_time"], standalone["requests"]),
            fmt_ratio(ratio(shared["in_time"], standalone["in_time"])),
        ),
        (
            "  with ghost text (answered at all)",
            f"{_count(shared['non_empty'])} ({_count(shared['answered'])})",
            f"{_count(standalone['non_empty'])} ({_count(standalone['answered'])})",
            "",
        ),
    ]
    for key, label in (("p50_ms", "p50 latency, answered (ms)"), ("p95_ms", "p95 (ms)")):
        a, b = shared.get(key), standalone.get(key)
        rows.append((label, fmt_ms(a), fmt_ms(b), fmt_ratio(ratio(a, b))))
    rows += [
        ("unanswered (must be 0)", str(shared["unanswered"]), str(standalone["unanswered"]), ""),
        (
            "engine requests left running (must be 0)",
            str(shared["engine_running_at_end"]),
            str(standalone["engine_running_at_end"]),
            "",
        ),
        (
            "engine requests",
            _count(shared.get("engine_requests")),
            _count(standalone.get("engine_requests")),
            "",
        ),
    ]
    per = standalone["editors"] / s
    note = (
        f"standalone: {s} `moe-lsp serve` over stdio; the same {standalone['editors']} editors "
        f"spread over them ({per:g} per server on one client, i.e. one session each)."
    )
    return Table(
        f"Soak, shared vs standalone: {duration(shared['minutes'])} per mode",
        ("", "shared", "standalone", "shared/standalone"),
        rows,
        note,
    )
