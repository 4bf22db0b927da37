"""LSP base-protocol framing with limits and resync, over stdio (daemon thread) or loopback TCP."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from pygls.server import JsonRPCServer

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024
"""Largest message body accepted; a larger Content-Length is refused before any allocation."""
MAX_HEADER_LINE = 8 * 1024
"""Longest header line; a longer one is a framing error."""
CHUNK = 64 * 1024
"""Bytes read from the client at a time."""
_YIELDS = 5
"""Event-loop turns between two messages. A client's response to a server request reaches the
task awaiting it through `asyncio.wait_for` in 4 turns (concurrent future, wrapped future, inner
task, waiter), so that task runs before the next message, as it did with pygls' reader."""
_RESYNC_KEEP = 256
"""Bytes kept while scanning for the next header, so that one split across reads is found."""

# A complete Content-Length header line. Valid JSON cannot hold one (a JSON string holds no raw
# line break), so a match inside a body or skipped bytes is where the next message begins.
_HEADER_LINE = re.compile(rb"content-length:[ \t]*[0-9]+[ \t]*\r?\n", re.IGNORECASE)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class Frame:
    """One message body, as announced by its Content-Length."""

    body: bytes


@dataclass(frozen=True)
class FrameError:
    """Bytes that are not a well-framed message; `reason` is short and holds no body text."""

    reason: str


Event = Frame | FrameError


class FrameParser:
    """Splits a byte stream into message bodies. Pure: bytes in, events out; never raises.

    Headers end at an empty line; lines may end in CRLF or LF; names are case-insensitive;
    Content-Type and unknown headers are accepted and ignored (bodies are always UTF-8).
    Blank lines between messages are skipped. On a framing error (a line that is not a header,
    a missing, non-numeric, conflicting or too large Content-Length, an over-long header line)
    the parser reports one `FrameError` and then skips bytes until the next complete
    `Content-Length: N` line, which valid JSON bodies cannot contain. A body that holds the start
    of the next message (its Content-Length was too large) is cut there, and the rest is parsed
    again: as soon as a complete `Content-Length: N` line shows up inside a pending body, or when
    a complete body ends in `}` followed by `Content-...`. A body cut short by the end of input is
    reported, not delivered.
    """

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._buf = bytearray()
        self._state = "headers"  # "headers" | "body" | "resync"
        self._length: int | None = None
        self._in_headers = False
        self._need = 0
        self._scanned = 0

    def feed(self, data: bytes) -> list[Event]:
        """Take more bytes; return the messages and framing errors they complete."""
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> list[Event]:
        """The stream ended: report a message left incomplete."""
        events: list[Event] = []
        if self._state == "body":
            have, need = len(self._buf), self._need
            events.append(FrameError(f"input ended {have} bytes into a {need}-byte message"))
        elif self._state == "headers" and (self._in_headers or self._buf.strip()):
            events.append(FrameError("input ended inside a message header"))
        self._buf.clear()
        self._state = "headers"
        return events

    # -- states --------------------------------------------------------------------------------
    def _step(self, events: list[Event]) -> bool:
        """Advance one step; False when more bytes are needed."""
        if self._state == "body":
            return self._step_body(events)
        if self._state == "resync":
            return self._step_resync()
        return self._step_header(events)

    def _step_body(self, events: list[Event]) -> bool:
        end = min(len(self._buf), self._need)
        cut = self._header_in_body(end)
        if cut is None and end < self._need:
            return False  # wait for the rest of the body
        if cut is None:
            cut = _cut_header_tail(self._buf, end)
        if cut < self._need:
            log.warning(
                "Content-Length %d was too large: the next message starts at byte %d",
                self._need,
                cut,
            )
        events.append(Frame(bytes(self._buf[:cut])))
        del self._buf[:cut]
        self._new_message()
        return True

    def _header_in_body(self, end: int) -> int | None:
        """Where a complete Content-Length line starts in the body so far (scanned once)."""
        start, self._scanned = max(0, self._scanned - _RESYNC_KEEP), end
        if (
            self._buf.find(b"ontent-", start, end) < 0
            and self._buf.find(b"ONTENT-", start, end) < 0
        ):
            return None
        match = _HEADER_LINE.search(self._buf, start, end)
        return match.start() if match is not None else None

    def _step_resync(self) -> bool:
        match = _HEADER_LINE.search(self._buf)
        if match is None:
            del self._buf[: max(0, len(self._buf) - _RESYNC_KEEP)]
            return False
        del self._buf[: match.start()]
        self._new_message()
        return True

    def _step_header(self, events: list[Event]) -> bool:
        end = self._buf.find(b"\n")
        if end < 0:
            return self._check_partial_line(events)
        if end > MAX_HEADER_LINE:
            return self._error(events, "header line too long", skip=1)
        line = bytes(self._buf[: end + 1])
        content = line.rstrip(b"\r\n").strip(b" \t")
        if not content:
            del self._buf[: end + 1]
            if not self._in_headers:
                return True  # a stray blank line between messages
            if self._length is None:
                return self._error(events, "missing Content-Length header")
            self._state, self._need = "body", self._length
            return True
        name, colon, value = content.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return self._error(events, "invalid header line", skip=1)
        del self._buf[: end + 1]
        self._in_headers = True
        if name.lower() == b"content-length":
            return self._content_length(events, value.strip(b" \t"))
        if name.lower() == b"content-type":
            charset = value.lower().partition(b"charset=")[2].strip(b" \t\"';")
            if charset and charset not in (b"utf-8", b"utf8"):
                log.warning("Content-Type asks for charset %r; reading UTF-8", charset[:40])
        return True

    def _content_length(self, events: list[Event], value: bytes) -> bool:
        if not value.isdigit():
            return self._error(events, "Content-Length is not a number")
        if len(value) > 12 or int(value) > self.max_body:
            size = f"{int(value)} bytes" if len(value) <= 12 else "more than 10**12 bytes"
            return self._error(events, f"message of {size} refused (limit {_mib(self.max_body)})")
        length = int(value)
        if self._length is not None and self._length != length:
            return self._error(events, "conflicting Content-Length headers")
        self._length = length
        return True

    def _check_partial_line(self, events: list[Event]) -> bool:
        """Fail early on a line that cannot become a header (such as unframed JSON)."""
        if len(self._buf) > MAX_HEADER_LINE:
            return self._error(events, "header line too long", skip=1)
        head = bytes(self._buf[:64]).strip(b" \t\r")
        name = head.partition(b":")[0]
        if name and not _TOKEN.fullmatch(name):
            return self._error(events, "invalid header line", skip=1)
        return False

    def _error(self, events: list[Event], reason: str, skip: int = 0) -> bool:
        log.warning("framing error: %s; skipping to the next Content-Length header", reason)
        events.append(FrameError(reason))
        del self._buf[:skip]
        self._state = "resync"
        return True

    def _new_message(self) -> None:
        self._state, self._length, self._in_headers = "headers", None, False
        self._need = self._scanned = 0


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def _cut_header_tail(buf: bytearray, end: int) -> int:
    """Where a body of `end` bytes really ends if, after its last `}`, a header name begins.

    That is the next message's header cut off by a Content-Length a few bytes too large.
    """
    tail_start = buf.rfind(b"}", 0, end) + 1
    if tail_start and bytes(buf[tail_start:end]).lstrip().lower().startswith(b"content-"):
        return tail_start
    return end


# -- driving a protocol ------------------------------------------------------------------------
class MessageSink(Protocol):
    """What the transport hands bytes to (`MoeProtocol`)."""

    def handle_body(self, body: bytes) -> None:
        """One framed message body."""
        ...

    def handle_frame_error(self, reason: str) -> None:
        """Bytes that could not be framed."""
        ...


async def run_frames(
    read: Callable[[], Awaitable[bytes]],
    sink: MessageSink,
    stop: threading.Event | None = None,
    parser: FrameParser | None = None,
) -> None:
    """Read chunks until end of input (b"") and hand every framed message to `sink`.

    The role of `pygls.io_.run_async`: no exception from a message ends it, except SystemExit
    (the `exit` notification) and a lost client (broken pipe).
    """
    parser = parser or FrameParser()
    while stop is None or not stop.is_set():
        try:
            chunk = await read()
        except (OSError, ValueError) as err:
            log.warning("reading from the client failed (%s); stopping", type(err).__name__)
            chunk = b""
        for event in parser.feed(chunk) if chunk else parser.close():
            try:
                if isinstance(event, Frame):
                    sink.handle_body(event.body)
                else:
                    sink.handle_frame_error(event.reason)
            except (BrokenPipeError, ConnectionResetError):
                log.error("the client closed the connection")
                return
            except Exception as err:
                log.error("message handling failed (%s)", type(err).__name__, exc_info=True)
            # One message per turn of the event loop, as with pygls' reader: tasks that a message
            # woke (such as a handler awaiting this response from the client) run before the next.
            for _ in range(_YIELDS):
                await asyncio.sleep(0)
        if not chunk:
            log.info("end of input")
            return


class ThreadReader:
    """Reads a blocking binary stream in a daemon thread, which never holds up interpreter exit.

    A stream with a file descriptor is read with `os.read`, so no buffered-reader lock is held
    while blocked. At most `max_pending` chunks wait for the event loop (back-pressure).
    """

    def __init__(self, stream: BinaryIO, chunk: int = CHUNK, max_pending: int = 8) -> None:
        self._stream = stream
        self._chunk = chunk
        self._slots = threading.Semaphore(max_pending)
        self._queue: asyncio.Queue[bytes] | None = None

    async def read(self) -> bytes:
        """The next chunk; b"" at end of input."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=self._run, args=(loop, self._queue), name="lsp-stdin", daemon=True
            ).start()
        data = await self._queue.get()
        self._slots.release()
        return data

    def _read_once(self) -> bytes:
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        if fd is not None:
            return os.read(fd, self._chunk)
        read1 = getattr(self._stream, "read1", None)
        return read1(self._chunk) if read1 is not None else self._stream.read(self._chunk)

    def _run(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
        data = b"x"
        while data:
            self._slots.acquire()
            try:
                data = self._read_once()
            except (OSError, ValueError) as err:
                log.warning("reading stdin failed (%s)", type(err).__name__)
                data = b""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, data)
            except RuntimeError:  # the event loop is gone: the server is exiting
                return


class FullWriter:
    """pygls' writer interface over a binary stream: every byte written, then flushed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        """Write all of `data` (an unbuffered pipe may take it in parts)."""
        view = memoryview(data)
        while view:
            written = self._stream.write(view)
            view = view[written if written is not None else len(view) :]
        self._stream.flush()

    def close(self) -> None:
        """Close the stream."""
        self._stream.close()


def serve_stdio(
    server: JsonRPCServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> None:
    """Serve LSP on binary streams until `exit` or end of input (replaces `server.start_io`)."""
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(FullWriter(stdout or sys.stdout.buffer))
    reader = ThreadReader(stdin or sys.stdin.buffer)
    try:
        asyncio.run(run_frames(reader.read, _sink(server), stop))
    except BrokenPipeError:
        log.error("the client closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def _sink(server: JsonRPCServer) -> MessageSink:
    protocol = server.protocol
    if not hasattr(protocol, "handle_body"):
        raise TypeError("the server's protocol must be MoeProtocol (it has no handle_body)")
    return protocol  # type: ignore[return-value]
