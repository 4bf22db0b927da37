"""The plot of the shared-vs-standalone soak (bench-results/soak-shared.png)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.bench.soak_compare import project_memory


def draw(result: dict[str, Any]) -> Callable[[Any], None]:
    shared, alone = result["shared"], result["standalone"]
    n = shared["editors"]

    def paint(axes: Any) -> None:
        lat, mem = axes[0]
        bars, lbars = axes[1]
        for mode, color in ((shared, "tab:blue"), (alone, "tab:orange")):
            label = f"{mode['name']} ({mode['servers']} server{'s' * (mode['servers'] > 1)})"
            lat.scatter(
                [t for t, _ in mode["samples"]],
                [ms for _, ms in mode["samples"]],
                s=3,
                alpha=0.4,
                color=color,
                label=label,
            )
            mem.plot(
                [row["t"] for row in mode["trace"]],
                [row["pss_mib"] / 1024 for row in mode["trace"]],
                color=color,
                label=label,
            )
        lat.set_yscale("log")
        lat.set_xlabel("seconds")
        lat.set_ylabel("latency of answered requests (ms)")
        lat.legend()
        mem.set_xlabel("seconds")
        mem.set_ylabel("PSS of the server trees (GiB)")
        mem.legend()
        projected = project_memory(alone["pss_mib_per_server"], n) or 0
        names = ["shared", f"standalone x{alone['servers']}", f"standalone x{n}\n(projected)"]
        values = [shared["pss_mib_peak"] / 1024, alone["pss_mib_peak"] / 1024, projected / 1024]
        bars.bar(names, values, color=["tab:blue", "tab:orange", "tab:gray"])
        bars.set_ylabel("peak memory, PSS (GiB)")
        bars.set_title(f"{n} editors")
        x = [0, 1]
        for k, (key, hatch) in enumerate((("p50_ms", ""), ("p95_ms", "//"))):
            lbars.bar(
                [v + 0.4 * k for v in x],
                [shared[key] or 0, alone[key] or 0],
                width=0.4,
                hatch=hatch,
                color=["tab:blue", "tab:orange"],
                label=key.split("_")[0],
            )
        lbars.set_xticks([0.2, 1.2], ["shared", "standalone"])
        lbars.set_ylabel("latency of answered requests (ms)")
        lbars.legend()

    return paint
