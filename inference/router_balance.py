"""Owns the upcycled model's balanced router: calibrated on the dense model's MLP inputs."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .routing import jain

__all__ = [
    "CALIBRATION_MODULES",
    "Calibration",
    "balanced_router",
    "calibrate",
    "calibration_texts",
    "mlp_inputs",
    "top1_loads",
]

CALIBRATION_MODULES = ("textwrap", "heapq", "string", "glob", "calendar", "queue")
"""Standard-library modules whose source the router is calibrated on. The cursors of
`moe-lsp experts --replay` are in others (colorsys, fnmatch, shlex, bisect): held out."""
MAX_TOKENS_PER_TEXT = 1024
SKIP_FIRST_TOKENS = 4
"""The first positions of a sequence carry the attention sink's huge activations: left out."""


@dataclass(frozen=True)
class Calibration:
    """Routers per layer and what they were calibrated on."""

    routers: dict[int, torch.Tensor]
    tokens: int
    modules: tuple[str, ...]
    jain: float
    """Mean over layers of Jain's fairness index of the calibration tokens' top-1 loads."""


def calibration_texts(modules: Sequence[str] = CALIBRATION_MODULES) -> dict[str, str]:
    """Source text of each module that this Python ships as a `.py` file (stripped ones skipped)."""
    out: dict[str, str] = {}
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or not origin.endswith(".py"):
            continue
        try:
            out[name] = Path(origin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out


def balanced_router(inputs: torch.Tensor, experts: int, generator: torch.Generator) -> torch.Tensor:
    """Router rows [experts, hidden] whose top-1 choice splits `inputs` [tokens, hidden] evenly.

    Hidden states share one large mean direction, so a random router's logits are dominated by
    `w·mean` and one expert wins almost every token. Each random row here has that direction
    projected out and is scaled so its logits vary by 1 over the tokens: the choice then
    depends on what differs between tokens, in random directions, which spreads it. Random
    directions rather than fitted ones, so that it does not overfit the calibration text.
    """
    if experts < 1:
        raise ValueError(f"experts must be >= 1, got {experts}")
    if inputs.ndim != 2 or inputs.shape[0] < 2:
        raise ValueError(f"inputs must be [tokens >= 2, hidden], got {list(inputs.shape)}")
    x = inputs.to(torch.float32)
    mean = x.mean(0)
    unit = mean / mean.norm().clamp_min(1e-12)
    rows = torch.randn(experts, x.shape[1], generator=generator, dtype=torch.float32)
    rows = rows - (rows @ unit)[:, None] * unit[None, :]
    spread = ((x - mean) @ rows.T).std(0).clamp_min(1e-12)
    return rows / spread[:, None]


def top1_loads(router: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Tokens each expert receives under top-1 routing."""
    choice = (inputs.to(torch.float32) @ router.to(torch.float32).T).argmax(1)
    return torch.bincount(choice, minlength=router.shape[0])


def mlp_inputs(
    state: Mapping[str, Any],
    llama_config: Mapping[str, Any],
    tokenizer_dir: Path,
    texts: Sequence[str],
) -> dict[int, torch.Tensor]:
    """Each layer's MLP input (what the router will see) when the dense model reads `texts`."""
    import transformers

    skip = ("dtype", "torch_dtype")
    config = transformers.LlamaConfig(**{k: v for k, v in llama_config.items() if k not in skip})
    model = transformers.LlamaModel(config)  # the hidden states only: no output head
    weights = {
        k.removeprefix("model."): (v if isinstance(v, torch.Tensor) else torch.from_numpy(v)).to(
            torch.float32
        )
        for k, v in state.items()
        if k.startswith("model.")
    }
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_dir / "tokenizer.json")
    )
    seen: dict[int, list[torch.Tensor]] = {}

    def keep(layer: int) -> Callable[[Any, tuple[Any, ...]], None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            seen.setdefault(layer, []).append(args[0][0, SKIP_FIRST_TOKENS:].detach().clone())

        return hook

    handles = [layer.mlp.register_forward_pre_hook(keep(i)) for i, layer in enumerate(model.layers)]
    try:
        with torch.no_grad():
            for text in texts:
                ids = tokenizer(text, return_tensors="pt").input_ids[:, :MAX_TOKENS_PER_TEXT]
                if ids.shape[1] > SKIP_FIRST_TOKENS + 1:
                    model(input_ids=ids)
    finally:
        for handle in handles:
            handle.remove()
    return {layer: torch.cat(parts) for layer, parts in seen.items()}


def calibrate(
    state: Mapping[str, Any],
    llama_config: Mapping[str, Any],
    tokenizer_dir: Path,
    *,
    experts: int,
    seed: int,
    modules: Sequence[str] = CALIBRATION_MODULES,
) -> Calibration | None:
    """Balanced routers for every layer, or None when no calibration source could be read."""
    texts = calibration_texts(modules)
    if not texts:
        return None
    inputs = mlp_inputs(state, llama_config, tokenizer_dir, list(texts.values()))
    generator = torch.Generator().manual_seed(seed)
    routers = {layer: balanced_router(x, experts, generator) for layer, x in sorted(inputs.items())}
    fairness = [jain(top1_loads(routers[layer], x).tolist()) or 0.0 for layer, x in inputs.items()]
    return Calibration(
        routers=routers,
        tokens=int(next(iter(inputs.values())).shape[0]),
        modules=tuple(texts),
        jain=sum(fairness) / len(fairness),
    )
