"""Run untrusted Python in a subprocess: temp dir, time/CPU/memory limits, no network."""

from __future__ import annotations

import enum
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache

STDERR_TAIL = 2000
"""Characters of the program's stderr kept in a result."""

# The guard runs in the child before the program: resource limits, then an audit hook that
# refuses writes outside the temp dir, new processes, signals, ctypes and (when no network
# namespace is available) sockets. Audit hooks cannot be removed once installed.
_GUARD = r"""
import os, resource, sys
root, network, cpu, mem, fsize = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
os.chdir(root)
_inside_root = root.rstrip("/") + "/"
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATHS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.rename": 2, "os.symlink": 2,
          "os.link": 2, "os.truncate": 1, "os.chmod": 1, "os.chown": 1, "os.utime": 1,
          "shutil.rmtree": 1, "shutil.copyfile": 2, "shutil.copytree": 2}
_DENY = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty", "pty.spawn", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym",
         "ctypes.call_function", "os.startfile")
_NET = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr")

def _outside(path):
    if isinstance(path, int) or path is None:
        return False
    path = os.fsdecode(path)
    return not os.path.realpath(os.path.join(root, path)).startswith(_inside_root)

def _hook(event, args, _net=network == "audit-hook"):
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags & _WRITE)
        if writes and _outside(path):
            raise PermissionError(f"sandbox: writing outside the temp dir: {path}")
    elif event in _PATHS:
        if any(_outside(a) for a in args[: _PATHS[event]] if isinstance(a, (str, bytes))):
            raise PermissionError(f"sandbox: {event} outside the temp dir")
    elif event in _DENY or event.startswith("os.exec") or event.startswith("os.spawn"):
        raise PermissionError(f"sandbox: {event} refused")
    elif _net and event in _NET:
        raise PermissionError(f"sandbox: network refused ({event})")

sys.addaudithook(_hook)
del _hook
with open("program.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "program.py", "exec")
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
"""


class Network(enum.StrEnum):
    """How the child is kept off the network."""

    UNSHARE = "unshare"
    """A new, empty network namespace (`unshare --net`): no interface but a down loopback."""
    AUDIT_HOOK = "audit-hook"
    """A Python audit hook refusing socket connect/bind/send and name lookups."""


class Status(enum.StrEnum):
    """How a sandboxed run ended."""

    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY = "memory"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1024**3
    file_bytes: int = 16 * 1024**2


@dataclass(frozen=True)
class Result:
    """The outcome of one sandboxed run."""

    status: Status
    returncode: int | None
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        """True when the program exited with 0."""
        return self.status is Status.PASSED


@cache
def network_isolation() -> Network:
    """`unshare --net` when it works here (needs root or user namespaces), else the audit hook."""
    exe = shutil.which("unshare")
    if exe is None:
        return Network.AUDIT_HOOK
    try:
        probe = subprocess.run(
            [exe, "--net", sys.executable, "-c", "pass"], capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return Network.AUDIT_HOOK
    return Network.UNSHARE if probe.returncode == 0 else Network.AUDIT_HOOK


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(source: str, limits: Limits = Limits(), network: Network | None = None) -> Result:
    """Run `source` as __main__ in a fresh temp dir (removed afterwards) under `limits`."""
    network = network or network_isolation()
    root = tempfile.mkdtemp(prefix="moe-eval-")
    t0 = time.monotonic()
    try:
        with open(os.path.join(root, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(source)
        cmd = [
            sys.executable,
            "-I",
            "-B",
            "-c",
            _GUARD,
            root,
            str(network),
            str(limits.cpu_seconds),
            str(limits.memory_bytes),
            str(limits.file_bytes),
        ]
        if network is Network.UNSHARE:
            cmd = ["unshare", "--net", *cmd]
        env = {"PATH": "/usr/bin:/bin", "HOME": root, "TMPDIR": root, "LANG": "C.UTF-8"}
        with open(os.path.join(root, ".stderr"), "wb") as err:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            try:
                code: int | None = proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                _kill_group(proc)  # also anything the program left running
                proc.wait()
        with open(os.path.join(root, ".stderr"), "rb") as err_in:
            err_in.seek(0, os.SEEK_END)
            err_in.seek(max(0, err_in.tell() - 4 * STDERR_TAIL))
            stderr = err_in.read().decode("utf-8", "replace")[-STDERR_TAIL:]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Result(_status(code, stderr), code, stderr, time.monotonic() - t0)


def _status(code: int | None, stderr: str) -> Status:
    if code == 0:
        return Status.PASSED
    if code is None or code == -signal.SIGXCPU or code == -signal.SIGKILL:
        return Status.TIMEOUT
    if "MemoryError" in stderr:
        return Status.MEMORY
    return Status.FAILED
