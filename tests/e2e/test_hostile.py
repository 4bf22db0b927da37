"""Hostile input over raw stdio: each request answered once with the right code; the server lives.

No model is needed: the server is given a missing model folder, so its engine fails at once and
completion requests answer empty. Every wait has a timeout, so a missing answer fails the test.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SERVER = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--model", "/nonexistent/model"]
TIMEOUT = 15.0
MAX_BODY = 64 * 1024 * 1024
SECRET = "def very_secret_function_body_4711"
"""Text put in hostile bodies; it must never reach the server log."""

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
SERVER_NOT_INITIALIZED = -32002
_ids = itertools.count(1000)


def frame(message: Any, headers: bytes = b"") -> bytes:
    """A correct LSP frame for a JSON value (or raw body bytes)."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


def request(method: str, params: Any = None, msg_id: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": next(_ids) if msg_id is None else msg_id}
    msg["method"] = method
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


class RawClient:
    """Writes raw bytes to a server and reads its framed messages; strict about its output."""

    def __init__(self, write: Any, stdout: BinaryIO, proc: subprocess.Popen[bytes] | None = None):
        self._write = write
        self.proc = proc
        self.received: list[dict[str, Any]] = []
        self.output_error: str | None = None
        self.closed = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    @classmethod
    def start(cls, log: Path, *args: str) -> RawClient:
        proc = subprocess.Popen(
            [*SERVER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def write(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        return cls(write, proc.stdout, proc)

    def _read(self, stdout: BinaryIO) -> None:
        try:
            while True:
                headers = {}
                while True:
                    line = stdout.readline()
                    if not line:
                        return
                    if line == b"\r\n":
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    assert line.endswith(b"\r\n") and value, f"bad header line {line!r}"
                    headers[name.lower()] = value.strip()
                length = int(headers["content-length"])
                body = stdout.read(length)
                assert len(body) == length, "short body from the server"
                with self._cond:
                    self.received.append(json.loads(body))
                    self._cond.notify_all()
        except Exception as err:
            self.output_error = f"{type(err).__name__}: {err}"
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    # -- sending ----------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self._write(data)

    def send(self, *messages: Any) -> None:
        self._write(b"".join(frame(m) for m in messages))

    # -- receiving ---------------------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the received messages, for `responses(since=...)`."""
        with self._cond:
            return len(self.received)

    def responses(self, since: int = 0) -> list[dict[str, Any]]:
        """Responses (not server requests or notifications) received after `since`."""
        with self._cond:
            return [m for m in self.received[since:] if "method" not in m]

    def wait_for(self, msg_ids: set[Any], timeout: float = TIMEOUT) -> None:
        """Wait until every id in `msg_ids` has a response; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                answered = {m.get("id") for m in self.received if "method" not in m}
                missing = msg_ids - answered
                if not missing:
                    return
                assert self.output_error is None, self.output_error
                assert not self.closed, (
                    f"server output ended; no answer for {sorted(map(str, missing))}"
                )
                left = deadline - time.monotonic()
                assert left > 0, f"no answer in {timeout} s for ids {sorted(map(str, missing))}"
                self._cond.wait(left)

    def ask(self, message: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send one request; return its one response."""
        since = self.mark()
        self.send(message)
        self.wait_for({message["id"]}, timeout)
        got = [r for r in self.responses(since) if r.get("id") == message["id"]]
        assert len(got) == 1, got
        return got[0]

    def null_errors(self, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.responses(since) if r.get("id") is None]

    def alive(self) -> None:
        """The server answers a normal request."""
        response = self.ask(request("moe/stats", {}))
        assert "result" in response and "counts" in response["result"], response

    def initialize(self) -> None:
        response = self.ask(request("initialize", {"capabilities": {}, "processId": None}))
        assert "capabilities" in response["result"]
        self.send(notification("initialized", {}))

    def exit_code(self, timeout: float = TIMEOUT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server still running {timeout} s later") from None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def error_of(response: dict[str, Any], code: int) -> str:
    assert "error" in response and "result" not in response, response
    assert response["error"]["code"] == code, response
    assert set(response["error"]) == {"code", "message"}, "no data (tracebacks) for the client"
    message = response["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def clean_log(log: Path) -> str:
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert SECRET not in text, "message text reached the log"
    return text


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[RawClient]:
    """A server that has not been initialized."""
    client = RawClient.start(tmp_path / "server.log")
    yield client
    client.close()


@pytest.fixture
def server(fresh: RawClient, tmp_path: Path) -> Iterator[RawClient]:
    """An initialized server (its engine fails at once: no model)."""
    fresh.initialize()
    yield fresh
    assert fresh.proc is not None and fresh.proc.poll() is None, "the server died"
    clean_log(tmp_path / "server.log")


OPEN_URI = "file:///work/hostile.py"


def inline_params(**over: Any) -> dict[str, Any]:
    params = {
        "textDocument": {"uri": OPEN_URI},
        "position": {"line": 0, "character": 4},
        "context": {"triggerKind": 1},
    }
    return {**params, **over}


# -- 1. malformed JSON -----------------------------------------------------------------------------
MALFORMED = [
    b"{bad}",
    b'{"jsonrpc": "2.0", "id": 5, "method": "moe/stats", "params": {',
    ('{"jsonrpc":"2.0","id":6,"method":"x","params":{"text":"' + SECRET + '"}').encode(),
    b"",
    b"\xff\xfe\x00garbage",
    b'{"jsonrpc":"2.0","id":7,"method":"moe/stats","params":{"a":NaN}}',
    b"[" * 50_000,
    b'{"jsonrpc":"2.0","id":8,"method":"moe/stats"} trailing',
]


def test_malformed_json_gets_a_parse_error(server: RawClient) -> None:
    for body in MALFORMED:
        since = server.mark()
        server.send_raw(frame(body))
        server.alive()
        got = server.responses(since)
        assert len(got) == 2 and got[0]["id"] is None, got
        error_of(got[0], PARSE_ERROR)


# -- 2. valid JSON, invalid message or params ------------------------------------------------------
def test_invalid_params_get_invalid_params(server: RawClient) -> None:
    server.send(
        notification(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": OPEN_URI,
                    "languageId": "python",
                    "version": 1,
                    "text": "x = ",
                }
            },
        )
    )
    inline = "textDocument/inlineCompletion"
    cases = [
        request(inline, {"textDocument": {"uri": OPEN_URI}, "context": {"triggerKind": 1}}),
        request(inline, inline_params(position={"line": "zero", "character": 0})),
        request(inline, inline_params(position={"line": -1, "character": 0})),
        request(inline, inline_params(textDocument=[1, 2])),
        {**request(inline), "params": None},
        request(inline, 42),
        request(inline, "text"),
        request("textDocument/completion", {"position": {"line": 0, "character": 0}}),
        request("moe/stats", 7),
        request("initialize", {"capabilities": {}}),  # refused first: already initialized
    ]
    for case in cases[:-1]:
        message = error_of(server.ask(case), INVALID_PARAMS)
        assert message.startswith(("Invalid params for", "Invalid params")), message
    error_of(server.ask(cases[-1]), INVALID_REQUEST)
    missing = request(inline, {"textDocument": {"uri": OPEN_URI}, "context": {"triggerKind": 1}})
    assert error_of(server.ask(missing), INVALID_PARAMS).endswith(
        "required field missing @ $.params.position"
    )
    wrong = request(inline, inline_params(textDocument=[1, 2]))
    assert error_of(server.ask(wrong), INVALID_PARAMS).endswith("@ $.params.textDocument.uri")
    # The document is still there and answers: a well-formed request works.
    ok = server.ask(request(inline, inline_params()))
    assert ok["result"] == {"items": []}


def test_invalid_notifications_are_dropped(server: RawClient) -> None:
    since = server.mark()
    server.send(
        notification("textDocument/didOpen", {"textDocument": {"uri": OPEN_URI}}),
        notification("textDocument/didChange", None),
        {**notification("textDocument/didClose"), "params": None},
        notification("textDocument/didOpen", [1, 2, 3]),
        notification("$/cancelRequest", {"id": [1]}),
        notification("$/setTrace", {"value": 5}),
        notification("initialized", {}),  # a second one
    )
    server.alive()
    assert len(server.responses(since)) == 1


ENVELOPES = [
    (b"[]", None, INVALID_REQUEST),
    (json.dumps([request("moe/stats", {})]).encode(), None, INVALID_REQUEST),
    (b"42", None, INVALID_REQUEST),
    (b'"text"', None, INVALID_REQUEST),
    (b"null", None, INVALID_REQUEST),
    (b"{}", None, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": 31}', 31, INVALID_REQUEST),
    (b'{"jsonrpc": "1.0", "id": 32, "method": "moe/stats"}', 32, INVALID_REQUEST),
    (b'{"id": "33", "method": "moe/stats"}', "33", INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": 34, "method": 5}', 34, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": 3.5, "method": "moe/stats"}', None, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": true, "method": "moe/stats"}', None, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": null, "method": "moe/stats"}', None, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "id": [1], "method": "moe/stats"}', None, INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "method": ["x"]}', None, INVALID_REQUEST),
]


@pytest.mark.parametrize(("body", "answer_id", "code"), ENVELOPES)
def test_invalid_messages_get_invalid_request(
    server: RawClient, body: bytes, answer_id: Any, code: int
) -> None:
    since = server.mark()
    server.send_raw(frame(body))
    server.alive()
    got = server.responses(since)
    assert len(got) == 2 and got[0]["id"] == answer_id, got
    error_of(got[0], code)


def test_responses_from_the_client_are_never_answered(server: RawClient) -> None:
    since = server.mark()
    server.send(
        {"jsonrpc": "2.0", "id": 41, "result": {"a": 1}},
        {"jsonrpc": "2.0", "id": "nope", "error": {"code": 1, "message": "x"}},
        {"jsonrpc": "2.0", "id": None, "error": "junk"},
    )
    server.alive()
    assert len(server.responses(since)) == 1


# -- 3. broken framing -----------------------------------------------------------------------------
def _stats_frame(msg_id: int) -> bytes:
    return frame(request("moe/stats", {}, msg_id))


FRAMINGS = [
    # (name, bytes, ids that must be answered, number of id-null parse errors)
    (
        "missing Content-Length",
        b"Content-Type: x\r\n\r\n" + json.dumps(request("moe/stats", {}, 51)).encode(),
        set(),
        1,
    ),
    ("non-numeric Content-Length", b"Content-Length: twelve\r\n\r\n{}", set(), 1),
    ("negative Content-Length", b"Content-Length: -2\r\n\r\n{}", set(), 1),
    ("stray blank lines", b"\r\n\r\n\n" + _stats_frame(52) + b"\r\n", {52}, 0),
    (
        "extra headers",
        frame(
            request("moe/stats", {}, 53),
            b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nX-Other: 1\r\n",
        ),
        {53},
        0,
    ),
    (
        "Content-Type first, lower-case names",
        b"content-type: application/json\r\n"
        + _stats_frame(54).replace(b"Content-Length", b"content-length"),
        {54},
        0,
    ),
    ("over the 64 MiB cap", b"Content-Length: %d\r\n\r\n{}" % (MAX_BODY + 1), set(), 1),
    ("absurd Content-Length", b"Content-Length: 99999999999999999999999999\r\n\r\n{}", set(), 1),
    ("unframed JSON", json.dumps(request("moe/stats", {}, 55)).encode() + b"\r\n", set(), 1),
    (
        "Content-Length too large (the next message starts inside)",
        b"Content-Length: 200\r\n\r\n" + json.dumps(request("moe/stats", {}, 56)).encode(),
        {56},
        0,
    ),
    (
        "Content-Length too small",
        b"Content-Length: 20\r\n\r\n" + json.dumps(request("moe/stats", {}, 57)).encode(),
        set(),
        2,
    ),
]


@pytest.mark.parametrize(
    ("data", "answered", "parse_errors"), [f[1:] for f in FRAMINGS], ids=[f[0] for f in FRAMINGS]
)
def test_broken_framing(
    server: RawClient, data: bytes, answered: set[int], parse_errors: int
) -> None:
    since = server.mark()
    server.send_raw(data)
    server.alive()  # the next well-framed request is read and answered
    server.wait_for(answered)
    got = server.responses(since)
    ids = [r["id"] for r in got if r["id"] is not None]
    assert sorted(ids[:-1]) == sorted(answered), got
    nulls = server.null_errors(since)
    assert len(nulls) == parse_errors, got
    for response in nulls:
        error_of(response, PARSE_ERROR)


def test_large_body_is_refused_and_skipped(server: RawClient) -> None:
    """70 MiB really sent: refused without buffering it, then the stream goes on."""
    since = server.mark()
    server.send_raw(b"Content-Length: %d\r\n\r\n" % (70 << 20))
    server.send_raw(b'{"jsonrpc":"2.0","params":{"text":"' + b"x" * (70 << 20) + b'"}}')
    server.alive()
    got = server.responses(since)
    assert len(got) == 2, got
    assert "refused" in error_of(got[0], PARSE_ERROR)


def test_short_body_then_end_of_input(fresh: RawClient, tmp_path: Path) -> None:
    fresh.initialize()
    fresh.alive()
    since = fresh.mark()
    fresh.send_raw(
        b"Content-Length: 300\r\n\r\n" + json.dumps(request("moe/stats", {}, 58)).encode()
    )
    assert fresh.proc is not None and fresh.proc.stdin is not None
    fresh.proc.stdin.close()
    assert fresh.exit_code() == 1  # no shutdown before the end
    fresh.wait_for({None})
    got = fresh.responses(since)
    assert len(got) == 1 and "input ended" in error_of(got[0], PARSE_ERROR), got
    clean_log(tmp_path / "server.log")


# -- 4. lifecycle ----------------------------------------------------------------------------------
def test_lifecycle_order(fresh: RawClient, tmp_path: Path) -> None:
    since = fresh.mark()
    fresh.send(notification("textDocument/didOpen", {"textDocument": {"uri": OPEN_URI}}))
    error_of(fresh.ask(request("moe/stats", {})), SERVER_NOT_INITIALIZED)
    error_of(fresh.ask(request("shutdown")), SERVER_NOT_INITIALIZED)
    error_of(fresh.ask(request("no/such/method", {})), SERVER_NOT_INITIALIZED)
    assert len(fresh.responses(since)) == 3  # the notification was dropped
    error_of(fresh.ask(request("initialize", {"processId": None})), INVALID_PARAMS)
    fresh.initialize()  # a failed initialize may be tried again
    fresh.alive()
    error_of(fresh.ask(request("initialize", {"capabilities": {}})), INVALID_REQUEST)
    fresh.alive()
    # A forged "response" with the id of the running shutdown request changes nothing.
    shutdown = request("shutdown")
    since = fresh.mark()
    fresh.send(shutdown, {"jsonrpc": "2.0", "id": shutdown["id"], "result": "forged"})
    fresh.wait_for({shutdown["id"]})
    got = [r for r in fresh.responses(since) if r["id"] == shutdown["id"]]
    assert got == [{"jsonrpc": "2.0", "id": shutdown["id"], "result": None}]
    message = error_of(fresh.ask(request("moe/stats", {})), INVALID_REQUEST)
    assert "shutting down" in message
    error_of(fresh.ask(request("shutdown")), INVALID_REQUEST)
    since = fresh.mark()
    fresh.send(notification("textDocument/didClose", {"textDocument": {"uri": OPEN_URI}}))
    fresh.send(notification("exit"))
    assert fresh.exit_code() == 0
    assert fresh.responses(since) == []
    clean_log(tmp_path / "server.log")


def test_exit_without_shutdown_exits_with_1(fresh: RawClient) -> None:
    fresh.initialize()
    fresh.alive()
    fresh.send(notification("exit"))
    assert fresh.exit_code() == 1


def test_exit_before_initialize_exits_with_1(fresh: RawClient) -> None:
    fresh.send(notification("exit", {"junk": True}))
    assert fresh.exit_code() == 1


def test_end_of_input_stops_the_server(fresh: RawClient) -> None:
    fresh.initialize()
    fresh.alive()
    assert fresh.proc is not None and fresh.proc.stdin is not None
    fresh.proc.stdin.close()
    assert fresh.exit_code() == 1


# -- 5. unknown methods ----------------------------------------------------------------------------
def test_unknown_methods(server: RawClient, tmp_path: Path) -> None:
    error_of(server.ask(request("no/such/method", {})), METHOD_NOT_FOUND)
    error_of(server.ask(request("$/unknownRequest", {})), METHOD_NOT_FOUND)
    error_of(
        server.ask(request("window/showMessage", {"type": 1, "message": "x"})), METHOD_NOT_FOUND
    )
    since = server.mark()
    server.send(
        notification("$/unknownNotification", {"a": 1}),
        notification("$/progress", {"token": 1, "value": {}}),
        notification("no/such/notification", {}),
        notification("textDocument/completion", inline_params()),  # a request without an id
        notification("shutdown"),  # likewise: does not shut down
    )
    server.alive()
    assert len(server.responses(since)) == 1
    # A notification method sent with an id is refused, and does not run.
    message = error_of(server.ask(request("exit")), INVALID_REQUEST)
    assert "notification" in message
    error_of(server.ask(request("initialized", {})), INVALID_REQUEST)
    server.alive()
    assert "$/unknownNotification" not in (tmp_path / "server.log").read_text()


# -- 6. exactly one answer per request -------------------------------------------------------------
def test_pipelined_mix_gets_one_answer_each(server: RawClient) -> None:
    """Valid and invalid requests written in one go: every id answered exactly once."""
    inline = "textDocument/inlineCompletion"
    messages = [
        request("moe/stats", {}),
        request(inline, inline_params()),
        request(inline, None),
        request("textDocument/completion", inline_params()),
        request("no/such/method"),
        request("initialize", {"capabilities": {}}),
        {"jsonrpc": "1.0", "id": next(_ids), "method": "moe/stats"},
        request("workspace/executeCommand", {"command": "nope"}),
        request(inline, inline_params(position={"line": 10**9, "character": 10**9})),
        request(inline, inline_params(textDocument={"uri": "file:///never/opened.py"})),
    ]
    ids = {m["id"] for m in messages}
    since = server.mark()
    server.send_raw(b"".join(frame(m) for m in messages * 3))  # ids repeat: 3 answers each
    server.wait_for(ids)
    deadline = time.monotonic() + TIMEOUT
    while len(server.responses(since)) < 3 * len(messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.alive()
    got = [r["id"] for r in server.responses(since)][:-1]
    assert sorted(map(str, got)) == sorted(map(str, [m["id"] for m in messages] * 3))


# -- fuzz: one server, many random frames ----------------------------------------------------------
LSP_METHODS = [
    "initialize",
    "initialized",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/hover",
    "completionItem/resolve",
    "workspace/executeCommand",
    "workspace/didChangeConfiguration",
    "window/workDoneProgress/cancel",
    "$/cancelRequest",
    "$/setTrace",
    "$/progress",
    "moe/stats",
    "exit",  # only ever sent with an id (refused); as a notification it would end the server
]
URIS = ["file:///work/f.py", "file:///work/g.rs", "untitled:1", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
small_ints = st.one_of(st.integers(-3, 50), st.integers(), st.sampled_from([2**31, 2**53]))
positions = st.fixed_dictionaries({"line": small_ints, "character": small_ints})
documents = st.fixed_dictionaries(
    {"uri": st.sampled_from(URIS)},
    optional={
        "languageId": st.sampled_from(["python", "rust", "", "x"]),
        "version": small_ints,
        "text": st.text(max_size=200),
    },
)
lsp_params = st.fixed_dictionaries(
    {},
    optional={
        "textDocument": documents,
        "position": positions,
        "context": st.fixed_dictionaries({"triggerKind": small_ints}),
        "contentChanges": st.lists(
            st.fixed_dictionaries(
                {"text": st.text(max_size=30)},
                optional={"range": st.fixed_dictionaries({"start": positions, "end": positions})},
            ),
            max_size=3,
        ),
        "id": small_ints,
        "capabilities": st.just({}),
        "command": st.text(max_size=10),
        "value": st.sampled_from(["off", "verbose", 3]),
    },
)
lsp_methods = st.sampled_from(LSP_METHODS)
junk_methods = st.text(max_size=30).filter(lambda m: m not in ("shutdown", "exit"))
methods = st.one_of(lsp_methods, lsp_methods, lsp_methods, junk_methods)
ids = st.one_of(st.integers(), st.integers(0, 100), st.text(max_size=8), json_values)


ranges = st.fixed_dictionaries({"start": positions, "end": positions})
completions = st.tuples(
    st.sampled_from(["textDocument/inlineCompletion", "textDocument/completion"]),
    st.fixed_dictionaries(
        {
            "textDocument": st.fixed_dictionaries({"uri": st.sampled_from(URIS)}),
            "position": st.fixed_dictionaries(
                {"line": st.integers(0, 60) | small_ints, "character": st.integers(0, 99)}
            ),
            "context": st.fixed_dictionaries({"triggerKind": st.sampled_from([1, 2])}),
        }
    ),
    st.just(True),
)
well_typed = st.one_of(
    completions,
    completions,
    completions,
    st.tuples(
        st.just("textDocument/didOpen"),
        st.fixed_dictionaries(
            {
                "textDocument": st.fixed_dictionaries(
                    {
                        "uri": st.sampled_from(URIS),
                        "languageId": st.sampled_from(["python", "rust", "plaintext"]),
                        "version": st.integers(0, 100),
                        "text": st.text(max_size=200),
                    }
                )
            }
        ),
        st.just(False),
    ),
    st.tuples(
        st.just("textDocument/didChange"),
        st.fixed_dictionaries(
            {
                "textDocument": st.fixed_dictionaries(
                    {"uri": st.sampled_from(URIS), "version": st.integers(0, 100)}
                ),
                "contentChanges": st.lists(
                    st.fixed_dictionaries(
                        {"text": st.text(max_size=30)}, optional={"range": ranges}
                    ),
                    max_size=3,
                ),
            }
        ),
        st.just(False),
    ),
    st.tuples(
        st.just("textDocument/didClose"),
        st.fixed_dictionaries(
            {"textDocument": st.fixed_dictionaries({"uri": st.sampled_from(URIS)})}
        ),
        st.just(False),
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """A JSON value to send: mostly message-shaped, sometimes anything."""
    shapes = ["well-typed"] * 3 + ["request"] * 2 + ["notification", "response", "other"]
    shape = draw(st.sampled_from(shapes))
    if shape == "other":
        return draw(json_values)
    if shape == "well-typed":
        method, params, is_request = draw(well_typed)
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        return {**msg, "id": draw(st.integers(0, 100))} if is_request else msg
    msg: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        msg["jsonrpc"] = "2.0"
    else:
        msg["jsonrpc"] = draw(json_values)
    if shape == "response":
        msg["id"] = draw(st.integers() | st.text(max_size=5))
        msg[draw(st.sampled_from(["result", "error"]))] = draw(json_values)
        return msg
    if shape == "request":
        msg["id"] = draw(ids)
        msg["method"] = draw(methods)
    else:
        msg["method"] = draw(methods.filter(lambda m: m != "exit"))
    if draw(st.integers(0, 3)):
        msg["params"] = draw(st.one_of(lsp_params, lsp_params, json_values))
    if not draw(st.integers(0, 19)):
        msg["method"] = draw(json_values)
    return msg


header_tokens = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHXYZ-_0123456789", min_size=1, max_size=12
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
extra_headers = st.lists(
    st.tuples(header_tokens, header_values).filter(lambda h: "content" not in h[0].lower())
    | st.just(("Content-Type", "application/vscode-jsonrpc; charset=utf-8")),
    max_size=3,
)


@dataclass
class FrameSpec:
    """One random frame: its message (None for raw bytes), framing kind and headers."""

    message: Any
    raw: bytes
    kind: str  # "good" (must be read) | "no-length" | "bad-length" | "huge" (may be skipped)
    headers: list[tuple[bytes, bytes]]
    length_at: int
    name: bytes
    prefix: bytes

    def build(self) -> bytes:
        body = self.raw if self.message is None else json.dumps(self.message).encode()
        if self.kind != "good" and self.message is None:
            body = b"{}"  # skipped bytes are JSON, which cannot hide a header line
        length = {"bad-length": b"1x2", "huge": b"%d" % (MAX_BODY + 1)}.get(
            self.kind, b"%d" % len(body)
        )
        lines = list(self.headers)
        if self.kind != "no-length":
            lines.insert(self.length_at, (self.name, length))
        elif not lines:
            lines = [(b"X-Empty", b"1")]
        return self.prefix + b"".join(b"%s: %s\r\n" % h for h in lines) + b"\r\n" + body


@st.composite
def frames(draw: st.DrawFn) -> FrameSpec:
    message = draw(messages())
    raw = b""
    if not draw(st.integers(0, 9)):
        message, raw = None, draw(st.binary(max_size=60))
    kind = draw(st.sampled_from(["good"] * 6 + ["no-length", "bad-length", "huge", "junk-line"]))
    prefix = b"\r\n" * draw(st.integers(0, 2))
    if kind == "junk-line":  # a line that is no header, before a good frame
        junk = draw(header_values.filter(lambda j: "content-length:" not in j.lower()))
        prefix += junk.encode() + b"\r\n\r\n"
        kind = "good"
    headers = [(h.encode(), v.encode()) for h, v in draw(extra_headers)]
    return FrameSpec(
        message=message,
        raw=raw,
        kind=kind,
        headers=headers,
        length_at=draw(st.integers(0, len(headers))),
        name=draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"])),
        prefix=prefix,
    )


def expected_answer(message: Any) -> bool:
    """Does this message have an id the server can read and must answer?"""
    if not isinstance(message, dict) or "id" not in message:
        return False
    try:
        json.dumps(message, allow_nan=False)
    except ValueError:  # Infinity is written, but it is not JSON: a parse error, id null
        return False
    msg_id = message["id"]
    if isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
        return False
    return "method" in message or not ("result" in message or "error" in message)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RawClient, Path]]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    client = RawClient.start(log, "--log-level", "ERROR")
    client.initialize()
    client.alive()
    yield client, log
    client.close()


def test_fuzz_random_frames(fuzz_server: tuple[RawClient, Path]) -> None:
    client, log = fuzz_server
    must: set[Any] = set()
    may: set[Any] = set()
    unique = itertools.count(1)
    sent: list[bytes] = []

    @settings(
        max_examples=800,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(frames(), min_size=1, max_size=4))
    def one_batch(batch: list[FrameSpec]) -> None:
        data, wanted = b"", set()
        for spec in batch:
            if expected_answer(spec.message):
                # A fresh id of the same type for every readable id, to count the answers.
                n = next(unique)
                fresh_id = n + 10**9 if isinstance(spec.message["id"], int) else f"fuzz-{n}"
                spec.message = {**spec.message, "id": fresh_id}
                (wanted if spec.kind == "good" else may).add(fresh_id)
            data += spec.build()
        sentinel = request("moe/stats", {})
        data += frame(sentinel)
        sent.append(data)
        del sent[:-5]
        client.send_raw(data)
        try:
            client.wait_for(wanted | {sentinel["id"]})
        except AssertionError as err:
            tail = log.read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"{err}\nlast input: {sent[-1][:2000]!r}\nserver log: {tail}"
            ) from None
        must.update(wanted)

    one_batch()
    client.alive()
    time.sleep(0.5)  # late duplicates would show up now
    counts: dict[Any, int] = {}
    for response in client.responses():
        counts[response.get("id")] = counts.get(response.get("id"), 0) + 1
    twice = {i: c for i, c in counts.items() if i is not None and c > 1}
    assert not twice, f"answered more than once: {twice}"
    assert not (must - counts.keys())
    strays = {i for i in counts if isinstance(i, str) and i.startswith("fuzz-")} - must - may
    assert not strays
    assert client.proc is not None and client.proc.poll() is None
