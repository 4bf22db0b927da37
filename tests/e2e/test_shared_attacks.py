"""The shared server attacked as an attacker would: over TCP and its unix socket, no model.

The server is given a missing model folder, so its engine fails at once; what is tested is who
gets in, what one connection can do to another, and that the server lives through it all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_hostile import (
    INVALID_REQUEST,
    PARSE_ERROR,
    SERVER_NOT_INITIALIZED,
    TIMEOUT,
    RawClient,
    error_of,
    frame,
    notification,
    request,
)

SERVE = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--model", "/nonexistent/model"]
TOKEN = "s3cr3t-token-value-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Shared:
    """A running shared server: its process, log, TCP port and unix socket."""

    def __init__(self, tmp: Path, *extra: str, folder: Path | None = None) -> None:
        self.port = free_port()
        self.folder = folder or tmp / "run"
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.socket = self.folder / "server.sock"
        token_file = tmp / "token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        self.log_path = tmp / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *SERVE,
                "--listen",
                f"tcp:127.0.0.1:{self.port}",
                "--listen",
                f"unix:{self.socket}",
                "--token-file",
                str(token_file),
                "--login-timeout",
                "2",
                *extra,
            ],
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + TIMEOUT
        while not self.socket.exists():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "the shared server did not listen"
            time.sleep(0.05)

    def tcp(self) -> tuple[socket.socket, RawClient]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return sock, RawClient(sock.sendall, sock.makefile("rb"))

    def unix(self) -> tuple[socket.socket, RawClient]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(str(self.socket))
        return sock, RawClient(sock.sendall, sock.makefile("rb"))

    def login(self, token: str = TOKEN) -> tuple[socket.socket, RawClient]:
        sock, client = self.tcp()
        response = client.ask(request("initialize", init_params(token)))
        assert "capabilities" in response["result"], response
        client.send(notification("initialized", {}))
        return sock, client

    def alive(self) -> None:
        """A new, authenticated client is served: the server lives."""
        sock, client = self.login()
        with sock:
            client.alive()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def init_params(token: str | None, **options: Any) -> dict[str, Any]:
    opts: dict[str, Any] = dict(options)
    if token is not None:
        opts["token"] = token
    return {"capabilities": {}, "processId": None, "initializationOptions": opts}


def closed_by_server(sock: socket.socket, timeout: float = TIMEOUT) -> bool:
    """True once the server closed the connection (reads end), False if it stayed open."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Shared]:
    server = Shared(tmp_path)
    try:
        yield server
    finally:
        server.stop()
        log = server.log()
        assert TOKEN not in log, "the token reached the log"
        assert "Traceback" not in log, log[-3000:]


def test_no_token_is_refused_and_repeated_tries_close_the_connection(shared: Shared) -> None:
    sock, client = shared.tcp()
    with sock:
        error_of(client.ask(request("initialize", init_params(None))), INVALID_REQUEST)
        error_of(client.ask(request("moe/stats", {})), SERVER_NOT_INITIALIZED)
        error_of(client.ask(request("shutdown")), SERVER_NOT_INITIALIZED)
        client.send(request("initialize", init_params("nope")))
        assert closed_by_server(sock)
    shared.alive()


@pytest.mark.parametrize("token", ["x", TOKEN[:-1], TOKEN + "x", "", TOKEN.upper()])
def test_a_wrong_token_is_refused(shared: Shared, token: str) -> None:
    sock, client = shared.tcp()
    with sock:
        message = error_of(client.ask(request("initialize", init_params(token))), INVALID_REQUEST)
        assert "token" in message
        error_of(client.ask(request("moe/stats", {})), SERVER_NOT_INITIALIZED)


def test_exit_before_login_ends_nothing(shared: Shared) -> None:
    sock, client = shared.tcp()
    with sock:
        client.send(notification("exit"))
        error_of(client.ask(request("moe/stats", {})), SERVER_NOT_INITIALIZED)
    time.sleep(0.3)
    assert shared.proc.poll() is None
    shared.alive()


@pytest.mark.parametrize(
    "payload",
    [
        # a browser page POSTing to the port: the body is LSP, the request line is not
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        + b"Content-Length: %d\r\n\r\n%s"
        % (
            len(body := json.dumps(request("initialize", init_params(TOKEN))).encode()),
            body,
        ),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello to a plain port
        b"{}\r\n",
    ],
)
def test_input_that_is_not_lsp_closes_the_connection_at_once(
    shared: Shared, payload: bytes
) -> None:
    sock, client = shared.tcp()
    with sock:
        client.send_raw(payload)
        assert closed_by_server(sock, timeout=5)
        assert client.responses() == [], "nothing is answered to a non-LSP client"
    shared.alive()


def test_after_login_a_framing_error_is_answered_and_the_connection_lives(shared: Shared) -> None:
    sock, client = shared.login()
    with sock:
        since = client.mark()
        client.send_raw(frame(b"{bad}") + b"Content-Length: x\r\n\r\n")
        client.alive()
        nulls = client.null_errors(since)
        assert [error_of(r, PARSE_ERROR) for r in nulls] and len(nulls) == 2


def test_connect_and_close_leaves_the_server_up(shared: Shared) -> None:
    for _ in range(20):
        socket.create_connection(("127.0.0.1", shared.port)).close()
    sock, _ = shared.tcp()
    sock.close()
    time.sleep(0.3)
    assert shared.proc.poll() is None
    shared.alive()


def test_an_unauthenticated_connection_cannot_touch_another_session(shared: Shared) -> None:
    a_sock, a = shared.login()
    b_sock, b = shared.tcp()
    with a_sock, b_sock:
        a.send(
            notification(
                "textDocument/didOpen",
                {
                    "textDocument": {
                        "uri": "file:///a.py",
                        "languageId": "python",
                        "version": 1,
                        "text": "x = 1\n",
                    }
                },
            )
        )
        for message in (
            request("moe/stats", {}),
            request("shutdown"),
            request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": "file:///a.py"},
                    "position": {"line": 0, "character": 4},
                    "context": {"triggerKind": 1},
                },
            ),
        ):
            error_of(b.ask(message), SERVER_NOT_INITIALIZED)
        b.send(notification("textDocument/didClose", {"textDocument": {"uri": "file:///a.py"}}))
        stats = a.ask(request("moe/stats", {}))["result"]
        assert stats["counts"]["requested"] == 0
        # A's session still has its document: a request for it is answered (empty: no engine)
        answer = a.ask(
            request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": "file:///a.py"},
                    "position": {"line": 0, "character": 4},
                    "context": {"triggerKind": 1},
                },
            )
        )
        assert answer["result"] == {"items": []}
        assert a.ask(request("moe/stats", {}))["result"]["counts"]["not_ready"] == 1


def test_responses_go_to_their_own_connection(shared: Shared) -> None:
    a_sock, a = shared.login()
    b_sock, b = shared.login()
    with a_sock, b_sock:
        a_mark, b_mark = a.mark(), b.mark()
        ids = [f"a-{i}" for i in range(20)]
        for msg_id in ids:
            a.send(request("moe/stats", {}, msg_id=msg_id))
        a.wait_for(set(ids))
        assert {r["id"] for r in a.responses(a_mark)} == set(ids)
        time.sleep(0.2)
        assert b.responses(b_mark) == [], "B received A's responses"


def test_shutdown_and_exit_end_one_session_only(shared: Shared) -> None:
    a_sock, a = shared.login()
    b_sock, b = shared.login()
    with a_sock, b_sock:
        assert a.ask(request("shutdown"))["result"] is None
        a.send(notification("exit"))
        assert closed_by_server(a_sock)
        b.alive()
    assert shared.proc.poll() is None


def test_engine_settings_from_a_client_are_ignored_with_a_message(shared: Shared) -> None:
    sock, client = shared.tcp()
    with sock:
        options = {"engine": {"model": "/tmp/evil", "trustRemoteCode": True}}
        response = client.ask(request("initialize", init_params(TOKEN, **options)))
        assert "capabilities" in response["result"]
        client.send(notification("initialized", {}))
        client.alive()
        shown = [m for m in client.received if m.get("method") == "window/showMessage"]
        assert any(
            "Engine settings belong to the shared server" in m["params"]["message"] for m in shown
        )
    assert "/tmp/evil" not in shared.log()


def test_a_client_cannot_raise_its_memory_budget_on_the_shared_server(shared: Shared) -> None:
    sock, client = shared.tcp()
    with sock:
        options = {"memoryBudgetBytes": 1 << 40}  # 1 TiB of documents and trees
        response = client.ask(request("initialize", init_params(TOKEN, **options)))
        assert "capabilities" in response["result"]
        client.send(notification("initialized", {}))
        client.alive()
        shown = [
            m["params"]["message"]
            for m in client.received
            if m.get("method") == "window/showMessage"
        ]
        assert any("over the shared server's limit for a session" in m for m in shown), shown


def test_a_stalled_client_is_dropped_before_login(shared: Shared) -> None:
    stalled = socket.create_connection(("127.0.0.1", shared.port))
    slow = socket.create_connection(("127.0.0.1", shared.port))
    with stalled, slow:
        slow.sendall(b"Content-Length: 5")  # and then nothing more: a slowloris
        started = time.monotonic()
        assert closed_by_server(stalled, timeout=10)
        assert closed_by_server(slow, timeout=10)
        assert time.monotonic() - started < 8
    shared.alive()


def test_too_many_connections_are_refused_and_the_server_lives(tmp_path: Path) -> None:
    server = Shared(tmp_path, "--max-connections", "4")
    try:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", server.port))
        assert closed_by_server(extra, timeout=5)
        for s in held:
            s.close()
        time.sleep(0.3)
        server.alive()
    finally:
        server.stop()


def test_the_unix_socket_is_private(shared: Shared) -> None:
    mode = stat.S_IMODE(shared.socket.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    assert stat.S_IMODE(shared.folder.stat().st_mode) == 0o700
    sock, client = shared.unix()  # the same user: no token needed on the unix socket
    with sock:
        response = client.ask(request("initialize", init_params(None)))
        assert "capabilities" in response["result"]


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_is_refused_on_the_unix_socket(tmp_path: Path) -> None:
    # A socket another user can reach (pytest's own folders are closed to them), opened to
    # everyone for this test: the peer-uid check must still refuse.
    folder = Path(tempfile.mkdtemp(prefix="moe-lsp-peer-", dir="/tmp"))
    shared = Shared(tmp_path, folder=folder)
    try:
        folder.chmod(0o755)
        shared.socket.chmod(0o666)
        _refused_as_nobody(shared)
        assert "refused a connection" in shared.log() and "another user" in shared.log()
    finally:
        shared.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _refused_as_nobody(shared: Shared) -> None:
    script = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "s.sendall(sys.stdin.buffer.read())\n"
        "try:\n"
        "    data = s.recv(65536)\n"
        "except ConnectionResetError:\n"
        "    data = b''\n"
        "print('closed' if not data else 'answered')\n"
    )
    message = frame(request("initialize", init_params(None)))
    out = subprocess.run(
        [sys.executable, "-c", script, str(shared.socket)],
        input=message,
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert out.stdout.strip() == b"closed", out
    shared.alive()


def test_tcp_without_a_token_does_not_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [*SERVE, "--listen", f"tcp:127.0.0.1:{free_port()}"],
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MOE_LSP_TOKEN"},
    )
    assert out.returncode == 2
    assert b"needs a token" in out.stderr and b"Traceback" not in out.stderr


def test_a_public_address_needs_tls(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    out = subprocess.run(
        [*SERVE, "--listen", "tcp:0.0.0.0:9", "--token-file", str(token)],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert b"TLS" in out.stderr and b"Traceback" not in out.stderr
