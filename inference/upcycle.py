"""Owns sparse upcycling of a dense HF Llama checkpoint into a top-1 MixtralForCausalLM one."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

__all__ = [
    "DEFAULT_ROUTER_SEED",
    "DEFAULT_ROUTER_STD",
    "DTYPES",
    "mixtral_config_from_llama",
    "save_checkpoint",
    "upcycle_state_dict",
]

DEFAULT_ROUTER_SEED = 0
DEFAULT_ROUTER_STD = 0.02
DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
}

_MLP_RE = re.compile(r"^model\.layers\.(\d+)\.mlp\.(gate_proj|up_proj|down_proj)\.weight$")
# Mixtral expert names: w1 = gate_proj, w2 = down_proj, w3 = up_proj.
_EXPERT_NAMES = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}

Tensorish = torch.Tensor | np.ndarray


def _as_tensor(value: Tensorish) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))


def mixtral_config_from_llama(
    llama_config: Mapping[str, Any],
    *,
    experts: int = 4,
    experts_per_tok: int = 1,
    dtype: str = "bfloat16",
) -> dict[str, Any]:
    """config.json of the upcycled MixtralForCausalLM built from a dense Llama config."""
    if experts < 1:
        raise ValueError(f"experts must be >= 1, got {experts}")
    if not 1 <= experts_per_tok <= experts:
        raise ValueError(f"experts_per_tok must be in [1, {experts}], got {experts_per_tok}")
    if llama_config.get("mlp_bias") or llama_config.get("attention_bias"):
        raise ValueError("Llama checkpoints with attention/MLP biases cannot become Mixtral")
    keep = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "rope_theta",
        "rms_norm_eps",
        "hidden_act",
        "initializer_range",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "use_cache",
    )
    config: dict[str, Any] = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral"}
    config.update({k: llama_config[k] for k in keep if k in llama_config})
    config.update(
        {
            "attention_dropout": 0.0,
            "sliding_window": None,
            "num_local_experts": experts,
            "num_experts_per_tok": experts_per_tok,
            "output_router_logits": False,
            "router_aux_loss_coef": 0.001,
            "router_jitter_noise": 0.0,
            "torch_dtype": dtype,
        }
    )
    config.setdefault("tie_word_embeddings", False)
    return config


def upcycle_state_dict(
    dense: Mapping[str, Tensorish],
    *,
    experts: int = 4,
    seed: int = DEFAULT_ROUTER_SEED,
    router_std: float = DEFAULT_ROUTER_STD,
    dtype: torch.dtype = torch.bfloat16,
    progress: bool = False,
    routers: Mapping[int, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Mixtral state dict: each dense MLP copied into `experts` experts plus a router.

    Every expert of layer N is an exact copy of the dense `mlp.{gate,up,down}_proj` of layer N,
    so with top-1 routing renormalised to weight 1 the MoE computes the dense model's output
    whatever the router. The router (`block_sparse_moe.gate.weight`, [experts, hidden]) is
    `routers[N]` when given (a balanced one), else drawn from N(0, router_std) with a seeded
    generator, so the same inputs give the same checkpoint.
    """
    if experts < 1:
        raise ValueError(f"experts must be >= 1, got {experts}")
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    layers: set[int] = set()
    hidden: int | None = None
    names = sorted(dense, key=_layer_sort_key)
    for name in tqdm(names, desc="Upcycling", unit="tensor", disable=not progress, leave=False):
        tensor = _as_tensor(dense[name]).to(dtype)
        match = _MLP_RE.match(name)
        if match is None:
            if ".mlp." in name:
                raise ValueError(f"unexpected MLP tensor {name!r}")
            out[name] = tensor.contiguous()
            if name == "model.embed_tokens.weight":
                hidden = int(tensor.shape[1])
            continue
        layer, proj = int(match.group(1)), match.group(2)
        layers.add(layer)
        prefix = f"model.layers.{layer}.block_sparse_moe.experts"
        for expert in range(experts):
            # safetensors refuses tensors sharing storage: every expert gets its own copy.
            out[f"{prefix}.{expert}.{_EXPERT_NAMES[proj]}.weight"] = tensor.clone()
    if hidden is None:
        raise ValueError("dense state dict has no model.embed_tokens.weight")
    for layer in sorted(layers):
        for proj, short in _EXPERT_NAMES.items():
            if f"model.layers.{layer}.block_sparse_moe.experts.0.{short}.weight" not in out:
                raise ValueError(f"layer {layer} has no mlp.{proj}")
        if routers is not None:
            if layer not in routers:
                raise ValueError(f"no router given for layer {layer}")
            router = routers[layer].to(torch.float32)
            if tuple(router.shape) != (experts, hidden):
                raise ValueError(
                    f"router of layer {layer} has shape {list(router.shape)}, "
                    f"expected {[experts, hidden]}"
                )
        else:
            router = torch.randn(experts, hidden, generator=generator) * router_std
        out[f"model.layers.{layer}.block_sparse_moe.gate.weight"] = router.to(dtype).contiguous()
    return out


def _layer_sort_key(name: str) -> tuple[int, str]:
    match = re.match(r"^model\.layers\.(\d+)\.", name)
    return (int(match.group(1)) if match else -1, name)


def save_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    out_dir: Path,
    *,
    filename: str = "model.safetensors",
) -> Path:
    """Write `config.json` and a single safetensors file (tied lm_head left out) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    if config.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)
    path = out_dir / filename
    save_file(tensors, str(path), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path
