"""GPU facts for the engine: free and total VRAM (NVML, no CUDA context), waiting for it to
be freed, the start-up check and advice vLLM's own memory errors lead to."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

GIB = 1024**3

VRAM_WAIT_SECONDS = 30.0
"""Longest wait, after an engine stopped, for its processes to give the GPU memory back."""
VRAM_POLL_SECONDS = 0.5
"""How often the wait reads the free memory."""
VRAM_SLACK_BYTES = 256 * 1024**2
"""Free memory may stay this much below the level before start (other programs move too)."""

VLLM_DEFAULT_UTILIZATION = 0.92
"""vLLM 0.32's default `gpu_memory_utilization` (vllm/config/cache.py)."""


@dataclass(frozen=True)
class DeviceMemory:
    """Memory of one GPU, in bytes."""

    index: int
    """The device's index as CUDA numbers it (after CUDA_VISIBLE_DEVICES)."""
    free: int
    total: int

    def as_wire(self) -> dict[str, float | int]:
        """{device, freeGib, totalGib} for moe/status."""
        return {
            "device": self.index,
            "freeGib": round(self.free / GIB, 2),
            "totalGib": round(self.total / GIB, 2),
        }


def _visible(count: int, env: str | None) -> list[int]:
    """Physical NVML indices of the devices CUDA uses, from CUDA_VISIBLE_DEVICES."""
    if env is None:
        return list(range(count))
    out = []
    for part in env.split(","):
        part = part.strip()
        if not part.isdigit():  # UUIDs or MIG names: report every device rather than guess
            return list(range(count))
        if int(part) < count:
            out.append(int(part))
    return out


def _nvml_memory() -> list[DeviceMemory] | None:
    """Per-device memory read through NVML (what vLLM's CUDA platform uses): no CUDA context
    is created in this process, so the reading costs no VRAM. None without NVML."""
    try:
        from vllm.utils.import_utils import import_pynvml

        pynvml = import_pynvml()
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        result = []
        for n, physical in enumerate(_visible(count, os.environ.get("CUDA_VISIBLE_DEVICES"))):
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(physical))
            result.append(DeviceMemory(n, int(info.free), int(info.total)))
        return result or None
    except Exception:
        log.debug("NVML memory query failed", exc_info=True)
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _torch_memory() -> list[DeviceMemory] | None:
    """torch.cuda.mem_get_info per device, only when this process already uses CUDA (it would
    otherwise create a context and take VRAM just to look)."""
    try:
        import torch

        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return None
        return [
            DeviceMemory(i, *(int(x) for x in torch.cuda.mem_get_info(i)))
            for i in range(torch.cuda.device_count())
        ]
    except Exception:
        return None


def vram() -> list[DeviceMemory] | None:
    """Free and total memory of each GPU this process would use; None without CUDA."""
    return _nvml_memory() or _torch_memory()


def vram_wire(devices: Sequence[DeviceMemory] | None) -> dict[str, object]:
    """The `gpu` field of moe/status: {gpu: [{device, freeGib, totalGib}]}, or {} on CPU."""
    return {"gpu": [d.as_wire() for d in devices]} if devices else {}


def engine_gpu(engine: object) -> dict[str, object]:
    """The engine's GPU memory for moe/status ({} for engines without one, or on CPU)."""
    report = getattr(engine, "gpu_memory", None)
    if not callable(report):
        return {}
    try:
        return dict(report())
    except Exception:
        log.debug("GPU memory report failed", exc_info=True)
        return {}


def wait_for_vram(
    target_free: Sequence[int],
    *,
    read: Callable[[], Sequence[DeviceMemory] | None] = vram,
    deadline: float = VRAM_WAIT_SECONDS,
    poll: float = VRAM_POLL_SECONDS,
    slack: int = VRAM_SLACK_BYTES,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Wait until each GPU has at least its `target_free` bytes free again (less `slack`), or
    `deadline` seconds passed. True when freed; False (and a warning) on the deadline; True at
    once without CUDA (nothing to wait for)."""
    end = clock() + deadline
    while True:
        now = read()
        if not now:
            return True
        short = [
            (d, want) for d, want in zip(now, target_free, strict=False) if d.free + slack < want
        ]
        if not short:
            return True
        if clock() >= end:
            d, want = short[0]
            log.warning(
                "GPU %d still has %.1f GiB free, %.1f GiB before the engine started: "
                "starting anyway after %.0f s (another process may hold its memory)",
                d.index,
                d.free / GIB,
                want / GIB,
                deadline,
            )
            return False
        sleep(poll)


def free_memory_problem(
    devices: Sequence[DeviceMemory] | None, utilization: float | None, used: int | None = None
) -> str | None:
    """vLLM's own start-up condition, checked before it runs: each GPU needs
    `gpu_memory_utilization` x total free (vllm/v1/worker/utils.py raises "Free memory on
    device ... is less than desired GPU memory utilization"). A sentence saying what to do,
    or None when the memory is there (or there is no GPU to look at). Only the first `used`
    devices are checked: the engine's GPUs (tensor x pipeline x data parallel, in the order
    CUDA numbers them)."""
    if not devices:
        return None
    if used is not None:
        devices = devices[: max(1, used)]
    share = VLLM_DEFAULT_UTILIZATION if utilization is None else utilization
    for d in devices:
        wanted = share * d.total
        if d.free < wanted:
            fits = max(0.05, int((d.free / d.total) * 100 - 1) / 100)
            return (
                f"GPU {d.index} has {d.free / GIB:.1f} of {d.total / GIB:.1f} GiB free, and vLLM "
                f"needs {share:g} x total = {wanted / GIB:.1f} GiB free to start. "
                f"Free GPU memory (other programs, another server), or set "
                f"engine.gpuMemoryUtilization to {fits:g} or less (less room for the KV cache)."
            )
    return None


ADVICE = (
    "free GPU memory (other programs, another server), split the model over more GPUs "
    "(engine.tensorParallelSize, and enableExpertParallel for a MoE), use a quantized "
    "checkpoint (FP8, NVFP4, AWQ), or lower engine.maxModelLen"
)
"""What to do when a model does not fit in GPU memory."""

_MEMORY_WORDS = (
    "out of memory",
    "free memory on device",  # vllm/v1/worker/utils.py
    "no available memory for the cache blocks",  # vllm/v1/core/kv_cache_utils.py
    "kv cache is needed, which is larger than the available kv cache memory",  # same file
    "cuda error: out of memory",
    "outofmemoryerror",
)


def start_failure(text: str, *, on_gpu: bool) -> str:
    """One line for a user whose engine failed to start with `text` (the first line of what
    vLLM raised; its engine process logs the cause above it)."""
    low = text.lower()
    if any(w in low for w in _MEMORY_WORDS) or "memory" in low or "oom" in low:
        if on_gpu:
            return f"Not enough GPU memory to start the model ({text}); {ADVICE}."
        return f"Not enough memory to start the model ({text}); lower kvCacheGib or maxModelLen."
    if on_gpu and "engine core initialization failed" in low:
        return (
            f"The model engine failed to start: {text} (the log above says why; when it is "
            f"GPU memory: {ADVICE})."
        )
    return f"The model engine failed to start: {text}"
