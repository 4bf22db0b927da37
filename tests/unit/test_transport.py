"""Framing parser and the error mapping: tables of byte streams and messages, no subprocess."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygls.lsp.server import LanguageServer

from moe_lsp.lsp.protocol import (
    INTERNAL_ERROR,
    INTERNAL_MESSAGE,
    MoeProtocol,
    Refused,
    client_safe,
    decode_json,
    readable_id,
)
from moe_lsp.lsp.transport import (
    MAX_BODY,
    MAX_HEADER_LINE,
    Frame,
    FrameError,
    FrameParser,
    FullWriter,
    ThreadReader,
    run_frames,
)

M1 = b'{"jsonrpc":"2.0","id":1,"method":"moe/stats"}'
M2 = b'{"jsonrpc":"2.0","id":2,"method":"moe/stats"}'


def framed(body: bytes, extra: bytes = b"") -> bytes:
    return b"Content-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def parse(data: bytes, max_body: int = MAX_BODY, chunk: int | None = None) -> list[Any]:
    """Events for `data` fed whole (or in `chunk`-byte pieces), then end of input."""
    parser = FrameParser(max_body)
    events = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        events += parser.feed(data[i : i + step])
    events += parser.close()
    return [e.body if isinstance(e, Frame) else ("error", e.reason) for e in events]


def err(fragment: str) -> tuple[str, str]:
    return ("error", fragment)


FRAMING = [
    ("one message", framed(M1), [M1]),
    ("two in a row", framed(M1) + framed(M2), [M1, M2]),
    ("LF line ends", b"Content-Length: %d\n\n%s" % (len(M1), M1), [M1]),
    ("lower-case name", b"content-length: %d\r\n\r\n%s" % (len(M1), M1), [M1]),
    ("no space after colon", b"Content-Length:%d\r\n\r\n%s" % (len(M1), M1), [M1]),
    (
        "Content-Type after",
        framed(M1, b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"),
        [M1],
    ),
    ("Content-Type before", b"Content-Type: x\r\n" + framed(M1), [M1]),
    ("unknown header", framed(M1, b"X-Trace: 7\r\n"), [M1]),
    ("stray blank lines", b"\r\n\r\n\n" + framed(M1) + b"\r\n" + framed(M2), [M1, M2]),
    ("zero length", b"Content-Length: 0\r\n\r\n" + framed(M1), [b"", M1]),
    ("same length twice", framed(M1, b"Content-Length: %d\r\n" % len(M1)), [M1]),
    (
        "missing Content-Length",
        b"Content-Type: x\r\n\r\n" + M1 + framed(M2),
        [err("missing Content-Length header"), M2],
    ),
    (
        "non-numeric Content-Length",
        b"Content-Length: abc\r\n\r\n" + M1 + framed(M2),
        [err("Content-Length is not a number"), M2],
    ),
    (
        "negative Content-Length",
        b"Content-Length: -5\r\n\r\n" + M1 + framed(M2),
        [err("Content-Length is not a number"), M2],
    ),
    (
        "conflicting Content-Length",
        framed(M1, b"Content-Length: 3\r\n") + framed(M2),
        [err("conflicting Content-Length headers"), M2],
    ),
    (
        "too large",
        b"Content-Length: 999\r\n\r\n" + M1 + framed(M2),
        [err("message of 999 bytes refused (limit 100 bytes)"), M2],
    ),
    (
        "absurdly large",
        b"Content-Length: 99999999999999999999999\r\n\r\n" + M1 + framed(M2),
        [err("message of more than 10**12 bytes refused (limit 100 bytes)"), M2],
    ),
    ("unframed JSON", M1 + framed(M2), [err("invalid header line"), M2]),
    ("junk line", b"hello world\r\n" + framed(M1), [err("invalid header line"), M1]),
    (
        "junk line inside the headers",
        b"Content-Length: 5\r\nnot a header\r\n\r\n" + M1 + framed(M2),
        [err("invalid header line"), M2],
    ),
    (
        "length too large: next header inside the body",
        b"Content-Length: %d\r\n\r\n" % (len(M1) + 30) + M1 + framed(M2),
        [M1, M2],
    ),
    (
        "length too large: next header cut in its name",
        b"Content-Length: %d\r\n\r\n" % (len(M1) + 10) + M1 + framed(M2),
        [M1, M2],
    ),
    (
        "length too small: rest of the body read as a header line",
        b"Content-Length: %d\r\n\r\n" % (len(M1) - 5) + M1 + framed(M2),
        [M1[:-5], err("invalid header line"), M2],
    ),
    (
        "body cut short by end of input",
        b"Content-Length: 80\r\n\r\n" + M1,
        [err(f"input ended {len(M1)} bytes into a 80-byte message")],
    ),
    ("end of input in the headers", b"Content-Length: 5\r\n", [err("input ended inside")]),
    ("end of input after a blank line", framed(M1) + b"\r\n", [M1]),
    (
        "header line too long",
        b"X" * (MAX_HEADER_LINE + 10) + b"\r\n" + framed(M1),
        [err("header line too long"), M1],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in FRAMING], ids=[c[0] for c in FRAMING]
)
@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["whole", "bytewise", "7-byte"])
def test_framing(data: bytes, expected: list[Any], chunk: int | None) -> None:
    got = parse(data, max_body=100, chunk=chunk)
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        if isinstance(e, tuple):
            assert isinstance(g, tuple) and g[1].startswith(e[1]), (g, e)
        else:
            assert g == e


def test_large_length_is_refused_without_allocating() -> None:
    parser = FrameParser()
    events = parser.feed(b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert events == [FrameError("message of 67108865 bytes refused (limit 64 MiB)")]
    # The refused body is skipped in bounded memory until the next header.
    for _ in range(64):
        assert parser.feed(b"x" * 65536) == []
        assert len(parser._buf) <= 65536 + 256
    assert parser.feed(framed(M1)) == [Frame(M1)]


def test_too_large_length_is_cut_as_soon_as_the_next_header_arrives() -> None:
    parser = FrameParser()
    assert parser.feed(b"Content-Length: 500\r\n\r\n" + M1) == []
    assert parser.feed(framed(M2)[:10]) == []
    assert parser.feed(framed(M2)[10:]) == [Frame(M1), Frame(M2)]


def test_pending_body_is_scanned_once() -> None:
    """A large body arriving in pieces is not searched again from its start each time."""
    parser = FrameParser()
    parser.feed(b"Content-Length: %d\r\n\r\n" % (1 << 20))
    for _ in range(16):
        assert parser.feed(b'"' + b"Content-Type: x " * 4095) == []
        assert parser._scanned == len(parser._buf)


def test_body_of_exactly_the_limit_is_accepted() -> None:
    body = b'"' + b"a" * 98 + b'"'
    assert parse(framed(body), max_body=100) == [body]


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=40).filter(lambda b: b"ontent-" not in b), max_size=5),
    cuts=st.lists(st.integers(min_value=1, max_value=50), max_size=10),
)
def test_any_split_gives_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    """Correct frames come out whole, whatever the read boundaries."""
    data = b"".join(framed(b) for b in bodies)
    parser, events, pos = FrameParser(), [], 0
    for cut in cuts:
        events += parser.feed(data[pos : pos + cut])
        pos += cut
    events += parser.feed(data[pos:]) + parser.close()
    assert events == [Frame(b) for b in bodies]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises_and_recovers(junk: bytes) -> None:
    """After any junk, a blank line and a correct frame, the frame comes out."""
    parser = FrameParser(max_body=1000)
    parser.feed(junk)
    events = parser.feed(b"\r\n" + framed(M1))
    events += parser.feed(framed(M2))
    frames = [e for e in events if isinstance(e, Frame)]
    assert frames[-1] == Frame(M2)


# -- error mapping ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{bad}", "Expecting property name enclosed in double quotes at character 1"),
        (b'{"a":', "Expecting value at character 5"),
        (b"", "Expecting value at character 0"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a":1} {"b":2}', "Extra data at character 8"),
    ],
)
def test_bad_json_is_a_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(Refused) as info:
        decode_json(body)
    assert info.value.code == -32700
    assert info.value.msg_id is None and info.value.answer
    assert info.value.message == f"Parse error: {reason}"


@pytest.mark.parametrize(
    ("value", "readable"),
    [
        *[(1, True), (0, True), (-3, True), ("a", True), ("", True)],
        *[(True, False), (None, False), (1.5, False), ([1], False), ({"a": 1}, False)],
    ],
)
def test_readable_ids(value: Any, readable: bool) -> None:
    assert readable_id(value) is readable


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            INTERNAL_ERROR,
            'Traceback (most recent call last):\n  File "/home/x.py"',
            INTERNAL_MESSAGE,
        ),
        (-32602, "Invalid params: required field missing @ $.params\nmore", None),
        (-32601, "x" * 400, "x" * 300),
        (-32600, "", ""),
    ],
)
def test_client_safe(code: int, message: str, expected: str | None) -> None:
    from lsprotocol.types import ResponseError

    safe = client_safe(ResponseError(code=code, message=message, data={"traceback": "secret"}))
    assert safe.code == code and safe.data is None
    assert "\n" not in safe.message
    assert safe.message == (expected if expected is not None else message.splitlines()[0])


# -- the read loop ----------------------------------------------------------------------------
class Sink:
    """Records what the transport hands over; can be told to fail."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.seen: list[Any] = []
        self.fail_on = fail_on

    def handle_body(self, body: bytes) -> None:
        self.seen.append(body)
        if body == self.fail_on:
            raise RuntimeError("handler bug")

    def handle_frame_error(self, reason: str) -> None:
        self.seen.append(("error", reason))


def feed_from(chunks: list[bytes]) -> Callable[[], Awaitable[bytes]]:
    it = iter([*chunks, b""])

    async def read() -> bytes:
        return next(it)

    return read


def test_read_loop_survives_a_failing_handler() -> None:
    sink = Sink(fail_on=M1)
    asyncio.run(run_frames(feed_from([framed(M1), b"Content-Length: x\r\n", framed(M2)]), sink))
    assert sink.seen == [M1, ("error", "Content-Length is not a number"), M2]


def test_read_loop_reports_a_truncated_body_at_end_of_input() -> None:
    sink = Sink()
    asyncio.run(run_frames(feed_from([b"Content-Length: 10\r\n\r\n{}"]), sink))
    assert sink.seen == [("error", "input ended 2 bytes into a 10-byte message")]


def test_read_loop_stops_on_a_lost_client() -> None:
    class Gone(Sink):
        def handle_body(self, body: bytes) -> None:
            super().handle_body(body)
            raise BrokenPipeError

    sink = Gone()
    asyncio.run(run_frames(feed_from([framed(M1) + framed(M2)]), sink))
    assert sink.seen == [M1]


def test_read_loop_lets_exit_through() -> None:
    class Exits(Sink):
        def handle_body(self, body: bytes) -> None:
            raise SystemExit(0)

    with pytest.raises(SystemExit):
        asyncio.run(run_frames(feed_from([framed(M1)]), Exits()))


def test_read_loop_lets_woken_tasks_run_between_messages() -> None:
    """A task awaiting a client's response (through wait_for) runs before the next message."""
    order: list[Any] = []

    class Answers(Sink):
        def handle_body(self, body: bytes) -> None:
            order.append(body)
            if body == M1:
                answer.set_result(None)  # as pygls does for a client's response

    async def main() -> None:
        async def create() -> None:
            await asyncio.wrap_future(answer)

        async def handler() -> None:
            await asyncio.wait_for(create(), 5)
            order.append("handler resumed")

        task = asyncio.ensure_future(handler())
        await asyncio.sleep(0)
        await run_frames(feed_from([framed(M1) + framed(M2)]), Answers())
        await task

    answer: concurrent.futures.Future[None] = concurrent.futures.Future()
    asyncio.run(main())
    assert order == [M1, "handler resumed", M2]


def test_thread_reader_reads_files_and_pipes() -> None:
    async def read_all(reader: ThreadReader) -> bytes:
        out = b""
        while chunk := await reader.read():
            out += chunk
        return out

    data = framed(M1) * 1000
    assert asyncio.run(read_all(ThreadReader(io.BytesIO(data), chunk=1000))) == data

    import os

    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    with open(r, "rb") as stream:
        assert asyncio.run(read_all(ThreadReader(stream))) == data
    writer.join()


def test_thread_reader_is_a_daemon() -> None:
    import os

    r, w = os.pipe()
    stream = open(r, "rb")

    async def one() -> bool:
        task = asyncio.ensure_future(ThreadReader(stream).read())
        await asyncio.sleep(0.05)
        return task.done()

    assert asyncio.run(one()) is False  # blocked in read, yet asyncio.run returned
    threads = [t for t in threading.enumerate() if t.name == "lsp-stdin"]
    assert threads and all(t.daemon for t in threads)
    os.close(w)  # the thread reads end of input, finds the loop gone and ends
    for t in threads:
        t.join(5)
    stream.close()


def test_full_writer_writes_every_byte() -> None:
    class Trickle(io.BytesIO):
        def write(self, data: Any) -> int:
            return super().write(bytes(data[:3]))

    out = Trickle()
    FullWriter(out).write(json.dumps({"a": "b" * 100}).encode())
    assert json.loads(out.getvalue()) == {"a": "b" * 100}


# -- the gate: a protocol fed bodies directly, as a table ----------------------------------------
class Captured:
    """pygls' writer interface, keeping the framed responses."""

    def __init__(self) -> None:
        self.parser = FrameParser()
        self.messages: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        for event in self.parser.feed(data):
            assert isinstance(event, Frame)
            self.messages.append(json.loads(event.body))

    def close(self) -> None:
        pass


def gate() -> tuple[MoeProtocol, Captured]:
    server = LanguageServer("gate-test", "0", protocol_cls=MoeProtocol)

    @server.feature("moe/echo")
    def echo(ls: LanguageServer, params: Any) -> Any:
        return {"ok": True}

    @server.command("known.command")
    def known(ls: LanguageServer, *args: Any) -> Any:
        return None

    out = Captured()
    server.protocol.set_writer(out)
    assert isinstance(server.protocol, MoeProtocol)
    return server.protocol, out


def req(method: str, params: Any = None, msg_id: Any = 1) -> bytes:
    msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    return json.dumps(msg if params is None else {**msg, "params": params}).encode()


def note(method: str, params: Any = None) -> bytes:
    msg = {"jsonrpc": "2.0", "method": method}
    return json.dumps(msg if params is None else {**msg, "params": params}).encode()


INIT = req("initialize", {"capabilities": {}}, "init")
ANSWER = "answer"  # a result, not an error
DROPPED = None  # no response at all
GATE = [
    # (state, body, expected: (id, code) | ANSWER | DROPPED)
    ("fresh", req("moe/echo", {}), (1, -32002)),
    ("fresh", req("no/such", {}), (1, -32002)),
    ("fresh", req("shutdown"), (1, -32002)),
    ("fresh", note("textDocument/didOpen", {}), DROPPED),
    ("fresh", note("$/anything"), DROPPED),
    ("fresh", req("initialize", {}), (1, -32602)),
    ("fresh", req("initialize", {"capabilities": {}}), ANSWER),
    ("fresh", b"{oops", (None, -32700)),
    ("ready", req("initialize", {"capabilities": {}}, 2), (2, -32600)),
    ("ready", req("moe/echo", {}), ANSWER),
    ("ready", req("moe/echo"), ANSWER),
    ("ready", req("moe/echo", [1, 2]), ANSWER),
    ("ready", req("moe/echo", 5), (1, -32602)),
    ("ready", req("no/such", {}), (1, -32601)),
    ("ready", req("$/no/such", {}), (1, -32601)),
    ("ready", req("exit"), (1, -32600)),
    ("ready", req("textDocument/didOpen", {}), (1, -32600)),
    ("ready", req("textDocument/hover", {"position": {"line": 0, "character": 0}}), (1, -32601)),
    ("ready", req("textDocument/didOpen", {}, None), (None, -32600)),
    ("ready", req("textDocument/didOpen", {}, 1.5), (None, -32600)),
    ("ready", req("moe/echo", {}, "s"), ANSWER),
    ("ready", req("workspace/executeCommand", {"command": "nope"}), (1, -32602)),
    ("ready", req("workspace/executeCommand", {"command": "known.command"}), ANSWER),
    ("ready", req("workspace/executeCommand", {}), (1, -32602)),
    ("ready", note("textDocument/didOpen", {}), DROPPED),
    ("ready", note("textDocument/didOpen", None), DROPPED),
    ("ready", note("no/such"), DROPPED),
    ("ready", note("$/no/such"), DROPPED),
    ("ready", note("$/cancelRequest", {"id": [1]}), DROPPED),
    ("ready", note("$/cancelRequest", {"id": 99}), DROPPED),
    ("ready", note("initialized", {}), DROPPED),
    ("ready", json.dumps({"jsonrpc": "2.0", "id": 7, "result": 1}).encode(), DROPPED),
    ("ready", json.dumps({"jsonrpc": "2.0", "id": 7, "error": 5}).encode(), DROPPED),
    ("ready", json.dumps({"jsonrpc": "2.0", "id": 8}).encode(), (8, -32600)),
    ("ready", json.dumps({"jsonrpc": "1.0", "id": 9, "method": "moe/echo"}).encode(), (9, -32600)),
    ("ready", json.dumps({"id": 9, "method": "moe/echo"}).encode(), (9, -32600)),
    ("ready", json.dumps({"jsonrpc": "2.0", "method": None}).encode(), (None, -32600)),
    ("ready", b"[]", (None, -32600)),
    ("ready", b"7", (None, -32600)),
    ("ready", b"\xc3\x28", (None, -32700)),
    ("shut down", req("moe/echo", {}), (1, -32600)),
    ("shut down", req("shutdown"), (1, -32600)),
    ("shut down", req("initialize", {"capabilities": {}}), (1, -32600)),
    ("shut down", note("textDocument/didOpen", {}), DROPPED),
]


@pytest.mark.parametrize(("state", "body", "expected"), GATE)
def test_gate(state: str, body: bytes, expected: Any) -> None:
    protocol, out = gate()
    if state != "fresh":
        protocol.handle_body(INIT)
        protocol.handle_body(note("initialized", {}))
    if state == "shut down":
        protocol.handle_body(req("shutdown", None, "bye"))
    before = len(out.messages)
    protocol.handle_body(body)
    got = out.messages[before:]
    if expected is DROPPED:
        assert got == []
        return
    assert len(got) == 1, got
    if expected == ANSWER:
        assert "result" in got[0] and "error" not in got[0], got
        return
    msg_id, code = expected
    assert got[0]["id"] == msg_id and "id" in got[0]
    assert got[0]["error"]["code"] == code
    assert set(got[0]["error"]) == {"code", "message"}


def test_handled_messages_leave_no_futures_behind() -> None:
    protocol, out = gate()
    protocol.handle_body(INIT)
    protocol.handle_body(note("initialized", {}))
    doc = {"uri": "file:///a.py", "languageId": "python", "version": 1, "text": "x"}
    protocol.handle_body(note("textDocument/didOpen", {"textDocument": doc}))
    for version in range(2, 50):
        change = {"textDocument": {"uri": doc["uri"], "version": version}}
        protocol.handle_body(note("textDocument/didChange", {**change, "contentChanges": []}))
        protocol.handle_body(req("moe/echo", {}, version))
    protocol.handle_body(note("textDocument/didClose", {"textDocument": {"uri": doc["uri"]}}))
    assert len([m for m in out.messages if "result" in m]) == 1 + 48
    assert protocol._request_futures == {}


@pytest.mark.parametrize(("shut_down", "code"), [(False, 1), (True, 0)])
def test_gate_lets_exit_through(shut_down: bool, code: int) -> None:
    protocol, _ = gate()
    protocol.handle_body(INIT)
    if shut_down:
        protocol.handle_body(req("shutdown"))
    with pytest.raises(SystemExit) as info:
        protocol.handle_body(note("exit", 5))
    assert info.value.code == code


def test_gate_logs_no_message_text(caplog: pytest.LogCaptureFixture) -> None:
    protocol, _ = gate()
    protocol.handle_body(INIT)
    secret = "def hidden_function_text(): pass"
    bodies = [
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"t":"' + secret.encode() + b'"',
        req("textDocument/inlineCompletion", {"textDocument": {"uri": secret}}),
        note("textDocument/didOpen", {"textDocument": {"text": secret}}),
        req("moe/echo", secret),
    ]
    with caplog.at_level("DEBUG"):
        for body in bodies:
            protocol.handle_body(body)
    assert caplog.records and secret not in caplog.text


def test_thread_reader_holds_at_most_max_pending_chunks() -> None:
    import os

    r, w = os.pipe()
    os.write(w, b"x" * 400)  # 100 chunks of 4 bytes waiting in the pipe

    async def first_then_wait(reader: ThreadReader) -> int:
        assert await reader.read() == b"xxxx"
        await asyncio.sleep(0.3)  # the reader thread runs on while nobody reads
        assert reader._queue is not None
        return reader._queue.qsize()

    with open(r, "rb") as stream:
        waiting = asyncio.run(first_then_wait(ThreadReader(stream, chunk=4, max_pending=3)))
    os.close(w)
    assert waiting == 3
