"""`moe-lsp connect`: the stdio command editors run; it forwards to the user's shared server,
starting that server in the background when none answers, or to a team's server (`--remote`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SOCKET_NAME = "server.sock"
START_LOCK = "start.lock"
SERVER_LOG = "server.log"
START_WAIT_SECONDS = 60.0
"""How long `connect` waits for a server it started to listen (the model loads after that)."""
CHUNK = 64 * 1024
TLS_LINGER_SECONDS = 5.0
"""After the editor's end of input, how long a TLS connection still waits for answers."""
MAX_HEADER = 8 * 1024
"""Longest header of the first message `connect --remote` reads."""
MAX_FIRST_MESSAGE = 16 * 1024 * 1024
"""Largest first message (initialize) `connect --remote` reads to add the token."""


def runtime_dir() -> Path:
    """The user's private folder for the shared server's socket: `$XDG_RUNTIME_DIR/moe-lsp`,
    else `<cache dir>/run` (created 0700; refused if another user owns it or others can enter)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir():
        folder = Path(base) / "moe-lsp"
    else:
        from moe_lsp.inference.model_store import cache_root

        folder = cache_root() / "run"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(folder)
    return folder


def check_private(folder: Path) -> None:
    """Raise PermissionError unless `folder` is ours and closed to everyone else."""
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user")
    if info.st_mode & 0o077:
        raise PermissionError(f"{folder} is open to other users (mode {info.st_mode & 0o777:o})")


def default_socket() -> Path:
    """The shared server's default unix socket."""
    return runtime_dir() / SOCKET_NAME


def try_connect(path: Path) -> socket.socket | None:
    """A connected unix socket, or None when no server answers there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def connect_or_start(
    path: Path, serve_args: Sequence[str], wait: float = START_WAIT_SECONDS
) -> socket.socket:
    """Connect to the server at `path`, starting one (once, under a lock, so two editor windows
    that start together do not both start it) when none answers."""
    sock = try_connect(path)
    if sock is not None:
        return sock
    lock_path = path.parent / START_LOCK
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `connect` waits here, then finds the server
        sock = try_connect(path)
        if sock is not None:
            return sock
        proc = start_server(path, serve_args)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            sock = try_connect(path)
            if sock is not None:
                return sock
            if proc.poll() is not None:
                raise ConnectionError(
                    f"the shared server exited at start: {_last_line(path.parent / SERVER_LOG)}"
                )
            time.sleep(0.1)
    raise ConnectionError(
        f"the shared server did not start within {wait:.0f} s; see {path.parent / SERVER_LOG}"
    )


def start_server(path: Path, serve_args: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start `moe-lsp serve --listen unix:PATH` in the background, in a session of its own
    (an editor closing does not take it down), logging to server.log beside the socket."""
    command = [
        sys.executable,
        "-m",
        "moe_lsp.lsp.cli",
        "serve",
        "--listen",
        f"unix:{path}",
        *serve_args,
    ]
    log_file = open(path.parent / SERVER_LOG, "ab")
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log_file.close()


def _last_line(log_file: Path) -> str:
    """The last non-empty line of the server's log (its one-line reason for leaving)."""
    try:
        lines = log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "no log"


def connect_remote(address: str, *, tls: bool, ca_file: str | None) -> socket.socket:
    """A connection to a team's shared server at HOST:PORT, over TLS when asked."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit():
        raise ConnectionError(f"--remote {address!r}: use HOST:PORT")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.settimeout(None)
    if not tls:
        return sock
    context = ssl.create_default_context(cafile=ca_file)
    return context.wrap_socket(sock, server_hostname=host)


def with_token(message: bytes, token: str) -> bytes:
    """The client's first message (initialize) with the token in initializationOptions.token;
    anything that is not a JSON object is passed on as it is (the server refuses it)."""
    try:
        data = json.loads(message)
    except ValueError:
        return message
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        return message
    options = data["params"].get("initializationOptions")
    options = dict(options) if isinstance(options, dict) else {}
    options["token"] = token
    data["params"]["initializationOptions"] = options
    return json.dumps(data).encode()


def _first_message(stdin: int) -> tuple[bytes, bytes] | None:
    """Read the first framed message from stdin: (body, bytes read past it); None at the end."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = os.read(stdin, CHUNK)
        if not data or len(buf) > MAX_HEADER:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length is None or length > MAX_FIRST_MESSAGE:
        return None
    while len(rest) < length:
        data = os.read(stdin, CHUNK)
        if not data:
            return None
        rest += data
    return rest[:length], rest[length:]


def _close_quietly(sock: socket.socket) -> None:
    """Hang up: a reader blocked on the socket sees its end."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def forward(sock: socket.socket, stdin: int, stdout: int, token: str | None = None) -> None:
    """Copy stdin to the socket and the socket to stdout until either side ends; with a
    `token`, it is put into the first message (initialize) on its way."""

    def upstream() -> None:
        with contextlib.suppress(OSError):
            if token is not None:
                first = _first_message(stdin)
                if first is None:
                    return
                body, rest = first
                body = with_token(body, token)
                sock.sendall(b"Content-Length: %d\r\n\r\n%s%s" % (len(body), body, rest))
            while data := os.read(stdin, CHUNK):
                sock.sendall(data)
        if isinstance(sock, ssl.SSLSocket):
            # TLS has no half-close (shutting down the write side ends TLS for reading too):
            # give the server a moment to answer what was sent, then hang up.
            threading.Timer(TLS_LINGER_SECONDS, _close_quietly, (sock,)).start()
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # the server sees end of input: the session ends

    threading.Thread(target=upstream, name="connect-stdin", daemon=True).start()
    with contextlib.suppress(OSError):
        while data := sock.recv(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view) :]
    sock.close()


def run(socket_path: str | None, serve_args: Sequence[str]) -> int:
    """`moe-lsp connect`: forward stdio to the shared server; 1 with a message when it cannot."""
    try:
        path = Path(socket_path) if socket_path else default_socket()
        if socket_path:
            check_private(path.parent)
        sock = connect_or_start(path, serve_args)
    except (OSError, ConnectionError) as err:
        print(f"moe-lsp connect: {err}", file=sys.stderr)
        return 1
    forward(sock, sys.stdin.fileno(), sys.stdout.fileno())
    return 0


def run_remote(address: str, *, tls: bool, ca_file: str | None, token: str | None) -> int:
    """`moe-lsp connect --remote HOST:PORT`: forward stdio to a team's server, adding the
    token to `initialize` (so it stays out of editor settings); 1 with a message on failure."""
    if token is None:
        print("moe-lsp connect: --remote needs --token-file or $MOE_LSP_TOKEN", file=sys.stderr)
        return 1
    try:
        sock = connect_remote(address, tls=tls, ca_file=ca_file)
    except (OSError, ConnectionError, ssl.SSLError) as err:
        print(f"moe-lsp connect: cannot reach {address}: {err}", file=sys.stderr)
        return 1
    forward(sock, sys.stdin.fileno(), sys.stdout.fileno(), token)
    return 0
