"""Typed engine configuration (a common part, a vLLM part, an OpenAI-server part) and its checks."""

from __future__ import annotations

import os
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import EngineConfigError

BACKENDS = ("vllm", "openai")
DTYPES = ("auto", "bfloat16", "float16", "float32")
EXECUTOR_BACKENDS = ("mp", "ray", "uni", "external_launcher")
GIB = 1024**3
CPU_KV_CACHE_GIB = 1.0
"""KV cache size on CPU when engine.kvCacheGib is not set."""


def wire_name(name: str) -> str:
    """The camelCase spelling of a snake_case field name, as clients send it."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why `value` does not fit the type `hint` (None when it does)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    origin = typing.get_origin(hint) or hint
    if isinstance(value, str) and origin is not str:
        low = value.strip().lower()
        if origin is bool and low in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return f"must be true or false (a JSON boolean), not the string '{value}'"
        kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(origin)
        return f"must be {kind or 'an object'}, not the string '{value}'"
    if origin is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be a whole number"
    if origin is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if origin is str:
        return None if isinstance(value, str) else "must be a string"
    if origin is dict:
        return None if isinstance(value, dict) else "must be an object"
    return None


def _check_types(obj: Any) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("vllm", "openai"):
            continue
        problem = _type_problem(value, hints[f.name])
        if problem is not None:
            raise EngineConfigError(f"engine.{wire_name(f.name)} {problem}.")


def _at_least(obj: Any, name: str, low: float, unit: str = "") -> None:
    value = getattr(obj, name)
    if value is not None and value < low:
        raise EngineConfigError(f"engine.{wire_name(name)} must be at least {low:g}{unit}.")


@dataclass(frozen=True)
class VllmConfig:
    """Settings of the in-process vLLM engine (backend 'vllm')."""

    dtype: str | None = None
    """Weight and activation dtype: auto, bfloat16, float16 or float32. None: bfloat16 on CPU,
    'auto' on GPU (the checkpoint's own dtype; bfloat16 is an error on GPUs before Ampere)."""
    max_model_len: int = 4096
    """Longest prompt plus completion, in tokens."""
    kv_cache_gib: float | None = None
    """Memory reserved for the KV cache, in GiB. None: 1 GiB of RAM on CPU; on GPU vLLM's
    share of GPU memory (`gpu_memory_utilization`) decides, and a value set here replaces it."""
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

    def __post_init__(self) -> None:
        _check_types(self)
        if self.dtype is not None and self.dtype not in DTYPES:
            raise EngineConfigError(
                f"Unknown dtype '{self.dtype}'; use one of: {', '.join(DTYPES)}."
            )
        _at_least(self, "max_model_len", 256, " tokens")
        if self.kv_cache_gib is not None and self.kv_cache_gib <= 0:
            raise EngineConfigError("engine.kvCacheGib must be a positive number of GiB.")
        if self.block_size is not None and (self.block_size <= 0 or self.block_size % 16):
            raise EngineConfigError(
                "engine.blockSize must be a positive multiple of 16 (32 on CPU)."
            )
        for name in (
            "max_num_seqs",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "data_parallel_size",
        ):
            _at_least(self, name, 1)
        backend = self.distributed_executor_backend
        if backend is not None and backend not in EXECUTOR_BACKENDS:
            raise EngineConfigError(
                f"engine.distributedExecutorBackend '{backend}' is not one of: "
                f"{', '.join(EXECUTOR_BACKENDS)}."
            )
        share = self.gpu_memory_utilization
        if share is not None and not 0 < share <= 1:
            raise EngineConfigError("engine.gpuMemoryUtilization must be above 0 and at most 1.")

    @property
    def cpu_kv_cache_gib(self) -> float:
        """The KV cache size on CPU (1 GiB unless set)."""
        return CPU_KV_CACHE_GIB if self.kv_cache_gib is None else self.kv_cache_gib

    def dtype_for(self, *, on_cpu: bool) -> str:
        """The dtype vLLM is given: the setting, else bfloat16 on CPU and 'auto' on GPU."""
        if self.dtype is not None:
            return self.dtype
        return "bfloat16" if on_cpu else "auto"


@dataclass(frozen=True)
class OpenAIConfig:
    """Settings of a remote OpenAI-compatible server (backend 'openai': `vllm serve`, llama.cpp)."""

    url: str | None = None
    """Base URL of the server, e.g. http://gpu-box:8000 (a trailing /v1 is accepted)."""
    api_key_file: str | None = None
    """File holding the server's API key (else $MOE_LSP_ENGINE_API_KEY; never logged)."""
    tokenizer: str | None = None
    """Local folder with the served model's tokenizer.json; None: the server's /tokenize."""
    connect_timeout: float = 5.0
    """Seconds to wait for a connection to the server."""
    read_timeout: float = 30.0
    """Longest wait, in seconds, for the next piece of a response."""

    def __post_init__(self) -> None:
        _check_types(self)
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise EngineConfigError(
                    f"engine.url '{self.url}' is not an http:// or https:// URL with a host."
                )
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise EngineConfigError(
                    f"engine.{wire_name(name)} must be a positive number of seconds."
                )


_PARTS = {"vllm": VllmConfig, "openai": OpenAIConfig}
_OWNER = {f.name: part for part, cls in _PARTS.items() for f in fields(cls)}


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings: what every backend reads, and one part per backend. camelCase on the
    wire and flat there (`engine.kvCacheGib`, `engine.url`); each key goes to its part."""

    backend: str = "vllm"
    """'vllm' (in this process) or 'openai' (a remote OpenAI-compatible server)."""
    model: str | None = None
    """vllm: local model folder or hub id, None for the prepared default model. openai: the
    served model's name, None for the first one the server lists."""
    vllm: VllmConfig = field(default_factory=VllmConfig)
    """Settings only the in-process vLLM engine reads."""
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    """Settings only the remote-server engine reads."""

    def __post_init__(self) -> None:
        _check_types(self)
        if self.backend not in BACKENDS:
            raise EngineConfigError(
                f"engine.backend '{self.backend}' is not one of: {', '.join(BACKENDS)}."
            )
        if self.backend == "openai" and not self.openai.url:
            raise EngineConfigError("engine.backend 'openai' needs engine.url (the server's URL).")
        if self.backend == "vllm" and self.openai.url:
            raise EngineConfigError(
                "engine.url is set but engine.backend is 'vllm'; set engine.backend to 'openai'."
            )

    @property
    def remote(self) -> bool:
        """True when the engine runs elsewhere and is reached over HTTP."""
        return self.backend != "vllm"

    def merged(self, data: dict[str, Any] | None) -> EngineConfig:
        """This config with camelCase (or snake_case) keys of `data` applied; a key may also sit
        under `vllm` or `openai`. A `url` without a `backend` selects 'openai'."""
        if not data:
            return self
        if not isinstance(data, dict):
            raise EngineConfigError("engine settings must be an object.")
        common: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {"vllm": {}, "openai": {}}
        for key, value in data.items():
            name = _snake(key)
            if name in _PARTS:
                if not isinstance(value, dict):
                    raise EngineConfigError(f"engine.{key} must be an object.")
                for sub, sub_value in value.items():
                    if _OWNER.get(_snake(sub)) != name:
                        raise EngineConfigError(f"Unknown engine setting '{key}.{sub}'.")
                    parts[name][_snake(sub)] = sub_value
            elif name in ("backend", "model"):
                common[name] = value
            elif name in _OWNER:
                parts[_OWNER[name]][name] = value
            else:
                raise EngineConfigError(f"Unknown engine setting '{key}'.")
        if parts["openai"].get("url") and "backend" not in common:
            common["backend"] = "openai"
        try:
            vllm = replace(self.vllm, **parts["vllm"])
            openai = replace(self.openai, **parts["openai"])
        except TypeError as err:  # a key valid for the other part only cannot reach here
            raise EngineConfigError(str(err)) from err
        return replace(self, vllm=vllm, openai=openai, **common)

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> EngineConfig:
        """Build from camelCase (or snake_case) keys; unknown keys raise EngineConfigError."""
        return cls().merged(data)


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
    """Raise EngineConfigError with one sentence if the vLLM engine cannot load `model_dir`
    on this machine (the values themselves were checked when the config was built)."""
    vllm = config.vllm
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
        need = _weights_bytes(local) + int(vllm.cpu_kv_cache_gib * GIB)
        avail = _mem_available_bytes()
        if avail is not None and need > avail:
            raise EngineConfigError(
                f"Not enough memory: the model and KV cache need {need / GIB:.1f} GiB, "
                f"{avail / GIB:.1f} GiB is available; lower kvCacheGib or pick a smaller model."
            )
