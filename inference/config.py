"""Typed engine configuration, its defaults, and checks that turn bad values into one message."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import EngineConfigError

DTYPES = ("auto", "bfloat16", "float16", "float32")
GIB = 1024**3


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the in-process vLLM engine. camelCase on the wire, snake_case here."""

    model: str | None = None
    """Local model folder or hub id; None means the prepared default model."""
    dtype: str = "bfloat16"
    """Weight and activation dtype: auto, bfloat16, float16 or float32."""
    max_model_len: int = 4096
    """Longest prompt plus completion, in tokens."""
    kv_cache_gib: float = 1.0
    """Memory reserved for the KV cache, in GiB (CPU RAM or GPU memory)."""
    block_size: int | None = None
    """KV cache block size in tokens; None: 32 on CPU (finer prefix reuse), vLLM's on GPU."""
    max_num_seqs: int = 16
    """Most requests batched together."""
    enforce_eager: bool | None = None
    """Skip graph capture / torch.compile; None means True on CPU (fast start), False on GPU."""
    tensor_parallel_size: int = 1
    """GPUs to split each layer across."""
    pipeline_parallel_size: int = 1
    """GPUs (or nodes) to split the layer stack across."""
    data_parallel_size: int = 1
    """Engine replicas."""
    enable_expert_parallel: bool = False
    """Spread MoE experts across GPUs instead of slicing each expert."""
    distributed_executor_backend: str | None = None
    """'mp' or 'ray' (for several nodes); None lets vLLM choose."""
    speculative_config: dict[str, Any] | None = None
    """vLLM speculative decoding, e.g. {"method": "ngram", "num_speculative_tokens": 4}."""
    gpu_memory_utilization: float | None = None
    """Share of GPU memory vLLM may use; None keeps vLLM's default."""
    trust_remote_code: bool = False
    """Allow model code from the model folder (needed by some hub models)."""
    extra_engine_args: dict[str, Any] = field(default_factory=dict)
    """Any other AsyncEngineArgs field, passed through unchanged."""

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> EngineConfig:
        """Build from camelCase (or snake_case) keys; unknown keys raise EngineConfigError."""
        if not data:
            return cls()
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = _snake(key)
            if name not in names:
                raise EngineConfigError(f"Unknown engine setting '{key}'.")
            values[name] = value
        return cls(**values)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def _mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) + sum(
        p.stat().st_size for p in folder.glob("*.bin")
    )


def validate(config: EngineConfig, model_dir: str, *, on_cpu: bool) -> None:
    """Raise EngineConfigError with one sentence if `config` cannot work on this machine."""
    if config.dtype not in DTYPES:
        raise EngineConfigError(f"Unknown dtype '{config.dtype}'; use one of: {', '.join(DTYPES)}.")
    if config.max_model_len < 256:
        raise EngineConfigError("maxModelLen must be at least 256 tokens.")
    if config.kv_cache_gib <= 0:
        raise EngineConfigError("kvCacheGib must be a positive number of GiB.")
    if config.block_size is not None and (config.block_size <= 0 or config.block_size % 16):
        raise EngineConfigError("blockSize must be a positive multiple of 16 (32 on CPU).")
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if getattr(config, name) < 1:
            raise EngineConfigError(f"{name} must be at least 1.")
    local = Path(model_dir).expanduser()
    looks_local = model_dir.startswith(("/", ".", "~")) or local.exists()
    if looks_local:
        if not local.is_dir():
            raise EngineConfigError(
                f"Model folder {local} does not exist; run `moe-lsp model prepare` "
                "or set engine.model to an existing folder."
            )
        if not (local / "config.json").is_file():
            raise EngineConfigError(
                f"Model folder {local} has no config.json; it is not a Hugging Face model folder."
            )
    elif os.environ.get("HF_HUB_OFFLINE") == "1":
        raise EngineConfigError(
            f"Model '{model_dir}' is not a local folder and the hub is offline "
            "(HF_HUB_OFFLINE=1); point engine.model at a downloaded folder."
        )
    if on_cpu and looks_local:
        need = _weights_bytes(local) + int(config.kv_cache_gib * GIB)
        avail = _mem_available_bytes()
        if avail is not None and need > avail:
            raise EngineConfigError(
                f"Not enough memory: the model and KV cache need {need / GIB:.1f} GiB, "
                f"{avail / GIB:.1f} GiB is available; lower kvCacheGib or pick a smaller model."
            )
