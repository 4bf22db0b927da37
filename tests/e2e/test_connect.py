"""`moe-lsp connect`: a private socket folder, one server for windows that start together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from moe_lsp.lsp.connect import check_private, connect_or_start, runtime_dir, with_token

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


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_a_teammate_connects_over_tls_with_a_per_user_token(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    tokens = tmp_path / "tokens"
    tokens.write_text("alice alice-token-0123456789\nbob bob-token-0123456789ab\n")
    tokens.chmod(0o600)
    mine = tmp_path / "mine"
    mine.write_text("bob-token-0123456789ab\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moe_lsp.lsp.cli",
            "serve",
            "--model",
            "/nonexistent/model",
            "--listen",
            f"tcp:127.0.0.1:{port}",
            "--tokens-file",
            str(tokens),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=log,
        stderr=log,
    )
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    ).encode()
    message = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    connect = [
        sys.executable,
        "-m",
        "moe_lsp.lsp.cli",
        "connect",
        "--remote",
        f"127.0.0.1:{port}",
        "--token-file",
        str(mine),
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        ok = subprocess.run(
            [*connect, "--tls", "--tls-ca", str(cert)],
            input=message,
            capture_output=True,
            timeout=60,
        )
        assert b'"capabilities"' in ok.stdout, ok.stderr
        # without the CA the certificate is not trusted: one clear line, no traceback
        untrusted = subprocess.run(
            [*connect, "--tls"], input=message, capture_output=True, timeout=60
        )
        assert untrusted.returncode == 1 and b"CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert b"Traceback" not in untrusted.stderr
        # plain TCP to the TLS port: nothing is answered
        plain = subprocess.run(connect, input=message, capture_output=True, timeout=60)
        assert b'"capabilities"' not in plain.stdout
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert "authenticated as bob" in text
    assert "bob-token" not in text and "Traceback" not in text


@pytest.mark.parametrize(
    ("first", "expected_options"),
    [
        (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
            {"token": "T"},
        ),
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"initializationOptions": {"logPrompts": False, "token": "old"}},
            },
            {"logPrompts": False, "token": "T"},
        ),
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"initializationOptions": "junk"},
            },
            {"token": "T"},
        ),
    ],
)
def test_with_token(first: dict, expected_options: dict) -> None:
    out = json.loads(with_token(json.dumps(first).encode(), "T"))
    assert out["params"]["initializationOptions"] == expected_options


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"params": 3}'])
def test_with_token_leaves_what_is_not_an_initialize_object(raw: bytes) -> None:
    assert with_token(raw, "T") == raw
