"""`make gpu-check MODEL=folder [CONFIG=config.toml]`: on a machine with NVIDIA GPUs, run the
end-to-end completion test, the latency bench and the HumanEval eval on a model folder, and
print the machine and the figures. Without a GPU it says so and does nothing.

The engine settings a large model needs (tensorParallelSize, enableExpertParallel,
speculativeConfig, ...) come from CONFIG, a moe-lsp config file: the servers read it as their
config file, the in-process benches through $MOE_LSP_BENCH_CONFIG."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NO_GPU_EXIT = 2
"""Exit status when there is no GPU (or the arguments cannot be used)."""


@dataclass(frozen=True)
class Step:
    """One check: a command run from the repository root with extra environment."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def steps(
    model: Path, config: Path | None, *, full: bool, python: str = sys.executable
) -> list[Step]:
    """The commands gpu-check runs, in order."""
    env: list[tuple[str, str]] = [("MOE_LSP_E2E_ARGS", f"--model {model}")]
    if config is not None:
        env += [("MOE_LSP_CONFIG", str(config)), ("MOE_LSP_BENCH_CONFIG", str(config))]
    else:
        env += [("MOE_LSP_CONFIG", "")]
    e2e = (
        "test_inline_completion_continues_the_code or test_completion_list_item"
        " or test_cancel_aborts_the_engine_request or test_zz_shutdown_leaves_no_process"
    )
    size = () if full else ("--smoke",)
    return [
        Step(
            "e2e completion",
            (python, "-m", "pytest", "-q", "-x", "tests/e2e/test_server.py", "-k", e2e),
            tuple(env),
        ),
        Step(
            "bench",
            (python, "-m", "tests.bench.bench_latency", "--model", str(model), *size),
            tuple(env),
        ),
        Step(
            "eval",
            (python, "-m", "tests.bench.eval_humaneval", "--model", str(model), *size),
            tuple(env),
        ),
    ]


def machine() -> list[str]:
    """Lines describing this machine: OS, CPU, RAM, GPUs, driver, torch, CUDA, vLLM."""
    lines = [f"host: {platform.node()} ({platform.platform()})"]
    lines.append(
        f"cpu: {os.cpu_count()} logical cores, {platform.processor() or platform.machine()}"
    )
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            total = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1])
        lines.append(f"ram: {total / 1024**2:.1f} GiB")
    except (OSError, StopIteration, ValueError):
        pass
    for name, detail in gpu_names():
        lines.append(f"gpu: {name} ({detail})")
    versions = []
    for module in ("torch", "vllm", "transformers"):
        try:
            mod = __import__(module)
            versions.append(f"{module} {getattr(mod, '__version__', '?')}")
        except Exception:
            versions.append(f"{module} missing")
    try:
        import torch

        versions.append(f"CUDA {torch.version.cuda or 'none'}")
    except Exception:
        pass
    lines.append("software: " + ", ".join(versions))
    return lines


def gpu_names() -> list[tuple[str, str]]:
    """(name, 'memory, driver') of each NVIDIA GPU NVML sees; [] without NVML or GPUs."""
    try:
        from vllm.utils.import_utils import import_pynvml

        pynvml = import_pynvml()
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            out.append(
                (
                    name,
                    f"{mem.total / 1024**3:.0f} GiB, {mem.free / 1024**3:.1f} GiB free, "
                    f"driver {driver}",
                )
            )
        return out
    except Exception:
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def has_gpu() -> bool:
    """An NVIDIA GPU is usable: NVML lists one, or torch sees CUDA."""
    if gpu_names():
        return True
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def problem_with(model: str | None, config: str | None) -> str | None:
    """Why these arguments cannot be used (None when they can)."""
    if not model:
        return "give the model folder: make gpu-check MODEL=/path/to/model [CONFIG=config.toml]"
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return f"model folder {folder} does not exist (download it first, e.g. `hf download`)"
    if not (folder / "config.json").is_file():
        return f"{folder} has no config.json; it is not a Hugging Face model folder"
    if config and not Path(config).expanduser().is_file():
        return f"config file {config} does not exist"
    return None


def run(step: Step) -> tuple[int, float]:
    """Run `step`, its output passed through; (exit status, seconds)."""
    env = dict(os.environ)
    env.update(step.env)
    print(f"\n== {step.name}: {' '.join(step.argv)}", flush=True)
    t0 = time.monotonic()
    code = subprocess.call(list(step.argv), cwd=ROOT, env=env)
    return code, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model folder (config.json, safetensors, tokenizer)")
    p.add_argument("--config", help="moe-lsp config file (TOML) with the engine settings")
    p.add_argument("--full", action="store_true", help="the whole bench and eval, not smoke")
    args = p.parse_args(argv)
    print("gpu-check: the machine")
    for line in machine():
        print("  " + line)
    if not has_gpu():
        print(
            "gpu-check: no NVIDIA GPU found on this machine (NVML lists none and CUDA is not "
            "available to torch); run it on a machine with a GPU. Nothing was run."
        )
        return NO_GPU_EXIT
    problem = problem_with(args.model, args.config)
    if problem:
        print(f"gpu-check: {problem}")
        return NO_GPU_EXIT
    model = Path(args.model).expanduser().resolve()
    config = Path(args.config).expanduser().resolve() if args.config else None
    results = [(s.name, *run(s)) for s in steps(model, config, full=args.full)]
    print("\ngpu-check: results (the figures are in the tables above and bench-results/)")
    for line in machine():
        print("  " + line)
    print(f"  model: {model}" + (f", config: {config}" if config else ""))
    for name, code, seconds in results:
        print(f"  {name:<16} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
