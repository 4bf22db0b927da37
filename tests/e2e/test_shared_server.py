"""Three clients on one shared server with the real engine, over its unix socket and over TCP.

Each client is its own session: it gets its own answers only, its documents never reach the
others' prompts, and one client leaving mid-request leaves the others served.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_hostile import RawClient, notification, request
from .test_shared_attacks import free_port, init_params

TOKEN = "team-token-0123456789abcdef"
READY_TIMEOUT = 900.0
SERVE = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--kv-cache-gib", "1"]

HELPER = '''def zebra_unicorn_total(values):
    """Sum of the values, skipping None."""
    return sum(v for v in values if v is not None)
'''
USER = "from helpers import zebra_unicorn_total\n\n\ndef report(rows):\n    return zebra_unicorn_"


class Server:
    """The shared server with the real default model, on a unix socket and a TCP port."""

    def __init__(self, tmp: Path) -> None:
        folder = tmp / "run"
        folder.mkdir(mode=0o700)
        self.socket = folder / "server.sock"
        self.port = free_port()
        token_file = tmp / "token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)
        self.log_path = tmp / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *SERVE,
                "--listen",
                f"unix:{self.socket}",
                "--listen",
                f"tcp:127.0.0.1:{self.port}",
                "--token-file",
                str(token_file),
                "--max-connections",
                "256",
                "--login-timeout",
                "60",
            ],
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "no socket"
            time.sleep(0.1)

    def unix(self) -> Client:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.socket))
        return Client(sock)

    def tcp(self) -> Client:
        return Client(socket.create_connection(("127.0.0.1", self.port)))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class Client(RawClient):
    """A raw LSP client on a socket, with the few requests these tests make."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        super().__init__(sock.sendall, sock.makefile("rb"))
        self.ids: set[Any] = set()
        """Ids of the requests this client sent."""
        self._lock = threading.Lock()

    def ask(self, message: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        self.ids.add(message["id"])
        return super().ask(message, timeout)

    def start(self, token: str | None = None, **options: Any) -> None:
        response = self.ask(request("initialize", init_params(token, **options)))
        assert "capabilities" in response["result"], response
        self.send(notification("initialized", {}))

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            state = self.stats()["state"]
            if state == "ready":
                return
            assert state != "failed", self.stats()["message"]
            time.sleep(0.5)
        raise AssertionError("engine not ready")

    def stats(self) -> dict[str, Any]:
        return self.ask(request("moe/stats", {}))["result"]

    def open(self, uri: str, text: str) -> None:
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        self.send(notification("textDocument/didOpen", {"textDocument": item}))

    def inline_message(self, uri: str, line: int, character: int) -> dict[str, Any]:
        return request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 1},
            },
        )

    def inline(self, uri: str, line: int, character: int) -> str:
        response = self.ask(self.inline_message(uri, line, character))
        items = response["result"]["items"]
        return items[0]["insertText"] if items else ""

    def foreign_responses(self) -> list[dict[str, Any]]:
        """Responses this client received for ids it never sent (another session's)."""
        return [r for r in self.responses() if r.get("id") not in self.ids]

    def close(self) -> None:
        """Hang up (the reader's file keeps the socket open until it is shut down)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("shared"))
    try:
        first = srv.unix()
        first.start()
        first.wait_ready()
        first.close()
        yield srv
    finally:
        srv.stop()
        log = srv.log()
        assert TOKEN not in log
        # vLLM's own lines start with "(EngineCore …)"/"(MainProcess …)"; its output handler may
        # log a traceback when the engine core stops under it at shutdown. Ours must not.
        ours = [line for line in log.splitlines() if not line.startswith("(")]
        assert not any("Traceback" in line for line in ours), log[-3000:]


def end_of(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


def test_three_clients_get_their_own_answers(server: Server) -> None:
    a, b, c = server.unix(), server.unix(), server.tcp()
    a.start()
    b.start()
    c.start(TOKEN)
    docs = {
        a: (
            "file:///a/fact.py",
            "def factorial(n):\n    if n == 0:\n        return 1\n    return n * ",
        ),
        b: ("file:///b/fib.py", "def fib(n):\n    if n < 2:\n        return n\n    return fib("),
        c: ("file:///c/sq.py", "def square(x):\n    return x "),
    }
    for client, (uri, text) in docs.items():
        client.open(uri, text)
    # all three at once: vLLM batches them in the one engine
    messages = {
        client: client.inline_message(uri, *end_of(text)) for client, (uri, text) in docs.items()
    }
    for client, message in messages.items():
        client.ids.add(message["id"])
        client.send(message)
    texts = {}
    for client, message in messages.items():
        client.wait_for({message["id"]}, timeout=120)
        (response,) = [r for r in client.responses() if r.get("id") == message["id"]]
        items = response["result"]["items"]
        texts[client] = items[0]["insertText"] if items else ""
    assert "factorial" in texts[a], texts
    assert "fib" in texts[b] or "n - " in texts[b], texts
    assert texts[c].strip(), texts
    time.sleep(0.3)
    for client in (a, b, c):
        assert client.foreign_responses() == [], "a response reached the wrong connection"
    users = a.stats()["server"]
    assert users["sessions"] >= 3 and "default" in users["requestsByUser"]
    for client in (a, b, c):
        client.close()


def test_a_sessions_documents_never_reach_another_sessions_prompt(server: Server) -> None:
    a, b, both = server.unix(), server.unix(), server.unix()
    for client in (a, b, both):
        client.start()
    a.open("file:///w/helpers.py", HELPER)
    b.open("file:///w/report.py", USER)
    both.open("file:///w/helpers.py", HELPER)
    both.open("file:///w/report.py", USER)
    b.inline("file:///w/report.py", *end_of(USER))
    both.inline("file:///w/report.py", *end_of(USER))
    # The same two files in one session give a snippet of the helper: the check can fail.
    assert both.stats()["last"]["snippets"] >= 1
    # B's session never saw the helper, which is open only in A's.
    assert b.stats()["last"]["snippets"] == 0
    for client in (a, b, both):
        client.close()


def test_a_client_leaving_mid_request_leaves_the_others_served(server: Server) -> None:
    a, b, c = server.unix(), server.unix(), server.tcp()
    a.start()
    b.start()
    c.start(TOKEN)
    body = "def parse_rows(lines):\n    result = []\n    for line in lines:\n        "
    a.open("file:///x/a.py", body)
    before = b.stats()["server"]["sessions"]
    a.send(a.inline_message("file:///x/a.py", *end_of(body)))
    time.sleep(0.3)  # the engine is generating for A
    a.close()
    b.open("file:///x/b.py", "def double(x):\n    return x * ")
    c.open("file:///x/c.py", "def half(x):\n    return x / ")
    assert b.inline("file:///x/b.py", 1, 15).strip()
    assert c.inline("file:///x/c.py", 1, 15).strip()
    deadline = time.monotonic() + 15
    while b.stats()["server"]["sessions"] >= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.stats()["server"]["sessions"] < before, "A's session did not end"
    deadline = time.monotonic() + 15
    while b.stats()["engine"]["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.stats()["engine"]["running"] == 0, "A's engine request was left running"
    b.close()
    c.close()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def timed_requests(client: Client, rounds: int) -> list[float]:
    """Latency of inline requests at fresh places (each a new generation), in ms."""
    out = []
    for i in range(rounds):
        text = f"def scale_{i}(values, factor):\n    return [v * "
        uri = f"file:///lat/{time.monotonic_ns()}_{i}.py"
        client.open(uri, text)
        t0 = time.perf_counter()
        client.inline(uri, *end_of(text))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def test_idle_and_slow_connections_do_not_slow_a_working_client(
    server: Server, tmp_path: Path
) -> None:
    worker = server.unix()
    worker.start()
    alone = timed_requests(worker, 12)
    idle = []
    for _ in range(200):
        client = server.unix()
        client.start()
        idle.append(client)
    slow = server.tcp()
    slow.start(TOKEN)
    stop = threading.Event()
    body = json.dumps(request("moe/stats", {})).encode()
    frame = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    def drip() -> None:  # one byte a second
        for byte in frame:
            if stop.wait(1.0):
                return
            try:
                slow.sock.sendall(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=drip, daemon=True).start()
    try:
        loaded = timed_requests(worker, 12)
    finally:
        stop.set()
    result = {"alone_p95_ms": p95(alone), "loaded_p95_ms": p95(loaded)}
    (tmp_path / "latency.json").write_text(json.dumps(result))
    print(result)
    assert p95(loaded) <= 2 * p95(alone), result
    assert worker.stats()["server"]["sessions"] >= 201
    for client in [worker, slow, *idle]:
        client.close()
