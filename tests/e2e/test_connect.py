"""`moe-lsp connect`: a private socket folder, one server for windows that start together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from moe_lsp.lsp.connect import check_private, connect_or_start, runtime_dir

NO_MODEL = ["--model", "/nonexistent/model", "--idle-exit", "3"]


def servers_on(socket_path: Path) -> list[psutil.Process]:
    """moe-lsp servers listening at `socket_path`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if f"unix:{socket_path}" in cmd and "serve" in cmd:
            found.append(proc)
    return found


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    yield run
    for proc in servers_on(run / "server.sock"):
        proc.kill()


@pytest.mark.parametrize(
    ("mode", "ok"),
    [(0o700, True), (0o750, False), (0o705, False), (0o777, False), (0o500, True)],
)
def test_the_socket_folder_must_be_private(tmp_path: Path, mode: int, ok: bool) -> None:
    path = tmp_path / "d"
    path.mkdir()
    path.chmod(mode)
    if ok:
        check_private(path)
    else:
        with pytest.raises(PermissionError, match="open to other users"):
            check_private(path)


def test_runtime_dir_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    made = runtime_dir()
    assert made == tmp_path / "moe-lsp" and (made.stat().st_mode & 0o777) == 0o700


def test_two_windows_starting_together_start_one_server(folder: Path) -> None:
    path = folder / "server.sock"
    socks: list[object] = []
    errors: list[BaseException] = []

    def window() -> None:
        try:
            socks.append(connect_or_start(path, NO_MODEL))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=window) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors
    assert len(socks) == 4
    assert len(servers_on(path)) == 1
    for s in socks:
        s.close()  # type: ignore[attr-defined]


def test_connect_forwards_stdio_and_the_server_exits_when_idle(folder: Path) -> None:
    path = folder / "server.sock"
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    ).encode()
    message = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    out = subprocess.run(
        [sys.executable, "-m", "moe_lsp.lsp.cli", "connect", "--socket", str(path), *NO_MODEL],
        input=message,
        capture_output=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    assert b'"capabilities"' in out.stdout and b'"id": 1' in out.stdout
    (server,) = servers_on(path)
    server.wait(30)  # --idle-exit 3: gone once the only session ended
    assert not path.exists()


def test_connect_refuses_a_folder_others_can_enter(tmp_path: Path) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o777)
    open_folder.chmod(0o777)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "moe_lsp.lsp.cli",
            "connect",
            "--socket",
            str(open_folder / "server.sock"),
        ],
        input=b"",
        capture_output=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 1
    assert b"open to other users" in out.stderr and b"Traceback" not in out.stderr


def test_a_server_that_cannot_start_is_reported_at_once(folder: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "moe_lsp.lsp.cli",
            "connect",
            "--socket",
            str(folder / "server.sock"),
            "--max-model-len",
            "-5",
        ],
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert b"exited at start" in out.stderr and b"maxModelLen" in out.stderr, out.stderr
