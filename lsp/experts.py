"""moe/experts: the engine's per-layer expert load (tokens per expert, max/mean, Jain's index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOT_READY = "The model is still loading."
REMOTE = (
    "This engine cannot report routed experts: a remote server's routing is not visible "
    "through its completions API."
)


def experts_body(engine: Any, ready: bool) -> dict[str, Any]:
    """Body of the moe/experts response for the process's engine (plain data, camelCase)."""
    if engine is None or not ready:
        return {"available": False, "message": NOT_READY}
    report = getattr(engine, "routed_experts", None)
    if report is None:
        return {"available": False, "message": REMOTE}
    return to_wire(report())


def to_wire(report: dict[str, Any]) -> dict[str, Any]:
    """snake_case keys of a routing report in camelCase (nested dicts and lists too)."""

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(p.title() for p in rest)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {camel(str(k)): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(report)


def table(body: dict[str, Any]) -> str:
    """The report as text: one line per layer, then the model's mean and worst."""
    if not body.get("available"):
        return str(body.get("message", "routed experts are not available"))
    layers = body.get("layers") or []
    if not layers:
        return "No tokens have been routed yet."
    experts = int(body.get("experts", 0))
    head = "layer  " + " ".join(f"{'e' + str(e):>7}" for e in range(experts))
    out = [head + "  max/mean    Jain"]
    for row in layers:
        tokens = " ".join(f"{t:>7d}" for t in row["tokens"])
        mom, jain = row.get("maxOverMean"), row.get("jain")
        out.append(f"{row['layer']:>5}  {tokens}  {_f(mom, 8)}  {_f(jain, 6, 3)}")
    out.append(
        f"tokens per layer: {body.get('tokens')} over the last {body.get('requests')} "
        f"requests (window {body.get('window')}); max/mean mean {_f(body.get('meanMaxOverMean'))}"
        f", worst {_f(body.get('worstMaxOverMean'))}; Jain mean {_f(body.get('meanJain'), 0, 3)}"
        f", worst {_f(body.get('worstJain'), 0, 3)} (1 = even, 1/{experts} = one expert takes all)"
    )
    return "\n".join(out)


def _f(value: Any, width: int = 0, digits: int = 2) -> str:
    text = "-" if value is None else f"{value:.{digits}f}"
    return f"{text:>{width}}" if width else text


def heatmap(body: dict[str, Any], path: Path, title: str = "") -> Path:
    """Layers x experts PNG: each cell the expert's share of the layer's tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r["tokens"] for r in body.get("layers") or []]
    if not rows:
        raise ValueError("no routed tokens to draw")
    counts = np.asarray(rows, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    experts = counts.shape[1]
    fig, ax = plt.subplots(figsize=(2.0 + 0.6 * experts, 1.5 + 0.18 * len(rows)))
    image = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=max(0.5, share.max()))
    ax.set_xlabel("expert")
    ax.set_ylabel("layer")
    ax.set_xticks(range(experts))
    fig.colorbar(image, ax=ax, label="share of the layer's tokens")
    ax.set_title(
        title
        or f"Expert load, Jain mean {_f(body.get('meanJain'), 0, 3)}, "
        f"max/mean mean {_f(body.get('meanMaxOverMean'))}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
