"""The project as a user installs it: `uv tool install` into a temporary folder, then
`moe-lsp model prepare` (no pip in the tool's environment) and `moe-lsp complete`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from moe_lsp.inference.gguf_fetch import pip_config, pip_config_files

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample.py"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def cpu_index_reachable(timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"{TORCH_CPU_INDEX}/torch/", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


def local_cpu_torch_dirs() -> list[str]:
    """pip's find-links folders (environment, then config files) holding a +cpu torch wheel."""
    config = pip_config(pip_config_files()).get("find-links", "")
    links = f"{os.environ.get('PIP_FIND_LINKS', '')} {config}"
    return [
        d
        for d in dict.fromkeys(links.split())
        if Path(d).is_dir() and any(Path(d).glob("torch-*+cpu-*.whl"))
    ]


def copy_tracked_files(dest: Path) -> None:
    """The repository's tracked files as they are in the work tree (no venv, no build output)."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, names):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            (dest / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(name))


def uv_binary() -> str:
    from uv import find_uv_bin  # the dev extra's uv

    return find_uv_bin()


def test_uv_tool_install_prepare_and_complete(tmp_path: Path) -> None:
    if cpu_index_reachable():
        source_args: list[str] = []  # [tool.uv.sources]: torch from PyTorch's CPU index
        how = f"torch from {TORCH_CPU_INDEX}"
    elif dirs := local_cpu_torch_dirs():
        source_args = ["--no-sources", *(a for d in dirs for a in ("--find-links", d))]
        how = f"{TORCH_CPU_INDEX} cannot be reached; torch from the local wheels in {dirs}"
    else:
        pytest.skip(f"{TORCH_CPU_INDEX} cannot be reached and pip's find-links has no +cpu torch")
    print(f"install: {how}", file=sys.stderr)

    src = tmp_path / "src"
    copy_tracked_files(src)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "UV_TOOL", "MOE_LSP_", "PYTHONPATH"))
    }
    env |= {
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "MOE_LSP_CACHE_DIR": str(tmp_path / "models"),  # prepared afresh, through the tool
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # the machine's uv cache is kept (UV_CACHE_DIR or the default), so a second run is quick
    started = time.monotonic()
    install = subprocess.run(
        [uv_binary(), "tool", "install", "--python", sys.executable, *source_args, f"{src}[cpu]"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    installed = time.monotonic()
    exe = tmp_path / "bin" / "moe-lsp"
    assert exe.is_file(), install.stderr[-2000:]
    tool_env = tmp_path / "tools" / "moe-lsp"
    assert not (tool_env / "bin" / "pip").exists(), "uv tool environments have no pip"

    prepare = subprocess.run(
        [str(exe), "model", "prepare"], env=env, capture_output=True, text=True, timeout=900
    )
    assert prepare.returncode == 0, prepare.stderr[-3000:]
    assert (tmp_path / "models").is_dir() and any((tmp_path / "models").rglob("*.safetensors"))
    prepared = time.monotonic()

    complete = subprocess.run(
        [
            str(exe),
            "complete",
            str(SAMPLE),
            "--line",
            "15",
            "--column",
            "16",
            "--kv-cache-gib",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert complete.returncode == 0, complete.stderr[-3000:]
    assert complete.stdout.strip(), "no ghost text printed"
    assert "torchvision::nms" not in complete.stderr
    print(
        f"uv tool install {installed - started:.0f} s, model prepare {prepared - installed:.0f} s,"
        f" complete {time.monotonic() - prepared:.0f} s",
        file=sys.stderr,
    )
