"""The shared server: one engine, many LSP sessions over unix sockets and TCP (+ TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .connect import try_connect
from .protocol import Authenticator, MoeProtocol
from .server import MoeLanguageServer
from .service import Service
from .settings import ServerSettings
from .transport import CHUNK, run_frames

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ListenError(ValueError):
    """A --listen address or security setting the server cannot use (one clear sentence)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the shared server listens: a unix socket path, or a TCP host and port."""

    kind: str
    """'unix' or 'tcp'."""
    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def loopback(self) -> bool:
        """Reachable from this machine only."""
        return self.kind == "unix" or self.host in LOOPBACK

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp:{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """`unix:PATH`, `tcp:HOST:PORT` or `tcp:[IPv6]:PORT`."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest:
        return Endpoint("unix", path=rest)
    if kind == "tcp" and rest:
        host, _, port = rest.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if host and port.isdigit() and 0 < int(port) < 65536:
            return Endpoint("tcp", host=host, port=int(port))
    raise ListenError(f"--listen {text!r}: use unix:PATH or tcp:HOST:PORT (port 1-65535).")


@dataclass(frozen=True)
class Limits:
    """What one connection may hold or cost the server."""

    max_connections: int = 64
    """Connections open at once; one more is closed at once."""
    login_seconds: float = 10.0
    """A connection must finish `initialize` within this long (a stalled client is dropped)."""
    max_inflight: int = 8
    """Completion requests running at once per session; more are answered empty at once."""
    max_write_buffer: int = 16 * 1024 * 1024
    """Bytes waiting for a client that does not read; past this it is dropped."""
    idle_exit_seconds: float = 0.0
    """Exit after this long with no session (the GPU is freed); 0: never."""


@dataclass
class Security:
    """Who may connect over TCP."""

    authenticate: Authenticator | None = None
    """Token -> user; required for every TCP endpoint."""
    tls: ssl.SSLContext | None = None
    """Required for an endpoint that is not loopback."""

    def check(self, endpoints: list[Endpoint]) -> None:
        """Raise ListenError for an endpoint these settings cannot make safe."""
        for ep in endpoints:
            if ep.kind != "tcp":
                continue
            if self.authenticate is None:
                raise ListenError(
                    f"{ep} needs a token: --token-file FILE, $MOE_LSP_TOKEN or --tokens-file."
                )
            if not ep.loopback and self.tls is None:
                raise ListenError(
                    f"{ep} is not loopback: it needs TLS (--tls-cert and --tls-key) and "
                    "per-user tokens (--tokens-file)."
                )


def read_tokens_file(path: Path) -> Authenticator:
    """Per-user tokens: one `USER TOKEN` pair a line ('#' starts a comment). The file must be
    readable by its owner only; tokens are compared in constant time and never logged."""
    import hmac

    info = path.stat()
    if info.st_mode & 0o077:
        raise ListenError(f"{path} is readable by other users; chmod 600 it.")
    pairs: list[tuple[str, bytes]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[1]) < 16:
            raise ListenError(f"{path} line {number}: write `USER TOKEN`, a token of 16+ chars.")
        pairs.append((parts[0], parts[1].encode()))
    if not pairs:
        raise ListenError(f"{path} holds no tokens.")

    def check(given: str | None) -> str | None:
        if given is None:
            return None
        found = None
        for user, token in pairs:  # every pair is compared: no early exit to time
            if hmac.compare_digest(given.encode(), token):
                found = user
        return found

    return check


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) from a certificate chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ListenError(f"cannot load the TLS certificate and key: {err}") from None
    return context


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The uid of a unix socket's peer (SO_PEERCRED), None when it cannot be read."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


class ConnectionWriter:
    """pygls' writer over one connection; a client that stops reading is dropped."""

    def __init__(self, writer: asyncio.StreamWriter, limit: int, drop: Callable[[], None]) -> None:
        self._writer = writer
        self._limit = limit
        self._drop = drop

    def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(data)
        if self._writer.transport.get_write_buffer_size() > self._limit:
            log.warning("dropping a connection that does not read its responses")
            self._drop()

    def close(self) -> None:
        self._writer.close()


@dataclass(eq=False)
class Connection:
    """One client's connection and the server speaking to it."""

    server: MoeLanguageServer
    writer: asyncio.StreamWriter
    endpoint: Endpoint
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        """Close the connection (its session ends when its reader sees the end)."""
        self.closed.set()
        with contextlib.suppress(Exception):
            self.writer.close()


class SharedServer:
    """Accepts connections on every endpoint; each gets a session on the one `Service`."""

    def __init__(
        self,
        service: Service,
        settings: ServerSettings,
        endpoints: list[Endpoint],
        limits: Limits | None = None,
        security: Security | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.endpoints = endpoints
        self.limits = limits or Limits()
        self.security = security or Security()
        self.security.check(endpoints)
        self.connections: set[Connection] = set()
        self.refused = 0
        """Connections closed at once (over the limit, another user's uid)."""
        self._servers: list[asyncio.AbstractServer] = []
        self._stop = asyncio.Event()

    # -- life cycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Listen, load the engine, serve until stopped (or idle past the limit)."""
        for ep in self.endpoints:
            self._servers.append(await self._listen(ep))
            log.info("listening on %s", ep)
        self.service.start(self.settings.engine, self.settings.completion.profile)
        idle = asyncio.ensure_future(self._idle_watch())
        try:
            await self._stop.wait()
        finally:
            idle.cancel()
            await self.close()

    def stop(self) -> None:
        """Stop serving (the engine stops with `close`)."""
        self._stop.set()

    async def close(self) -> None:
        """Close listeners and connections, remove socket files, stop the engine."""
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for ep in self.endpoints:
            if ep.kind == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(ep.path)
        await self.service.host.shutdown()

    async def _idle_watch(self) -> None:
        """Stop after `idle_exit_seconds` with no session."""
        limit = self.limits.idle_exit_seconds
        if limit <= 0:
            return
        idle_since = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(min(1.0, limit))
            now = asyncio.get_running_loop().time()
            if self.connections:
                idle_since = now
            elif now - idle_since >= limit:
                log.info("no session for %.0f s: exiting", limit)
                self.stop()
                return

    async def _listen(self, ep: Endpoint) -> asyncio.AbstractServer:
        if ep.kind == "unix":
            path = Path(ep.path)
            _claim_socket_path(path)
            old = os.umask(0o177)  # the socket file is born 0600
            try:
                return await asyncio.start_unix_server(
                    lambda r, w: self._connection(r, w, ep), path=str(path)
                )
            finally:
                os.umask(old)
        tls = self.security.tls
        return await asyncio.start_server(
            lambda r, w: self._connection(r, w, ep), ep.host, ep.port, ssl=tls
        )

    # -- one connection ------------------------------------------------------------------------
    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ep: Endpoint
    ) -> None:
        if len(self.connections) >= self.limits.max_connections:
            log.warning("refused a connection on %s: %d open", ep, len(self.connections))
            self.refused += 1
            writer.close()
            return
        if ep.kind == "unix" and peer_uid(writer) != os.getuid():
            log.warning("refused a connection on %s from another user", ep)
            self.refused += 1
            writer.close()
            return
        ls = MoeLanguageServer(self.settings, service=self.service, shared=True)
        from .handlers import register

        register(ls)
        conn = Connection(ls, writer, ep)
        protocol: MoeProtocol = ls.protocol  # type: ignore[assignment]
        protocol.set_writer(  # type: ignore[arg-type]
            ConnectionWriter(writer, self.limits.max_write_buffer, conn.close)
        )
        protocol.close_connection = conn.close
        if ep.kind == "tcp":
            protocol.authenticate = self.security.authenticate
        ls.session.max_inflight = self.limits.max_inflight
        self.connections.add(conn)
        login = asyncio.ensure_future(self._login_deadline(conn, protocol))

        async def read() -> bytes:
            if conn.closed.is_set():
                return b""
            return await reader.read(CHUNK)

        try:
            await run_frames(read, protocol)
        except SystemExit:
            pass  # `exit`: this connection's end only
        except Exception:
            log.exception("connection on %s failed", ep)
        finally:
            login.cancel()
            self.connections.discard(conn)
            ls.end()
            conn.close()
            log.info("session ended (%s, %d open)", ls.session.user or "-", len(self.connections))

    async def _login_deadline(self, conn: Connection, protocol: MoeProtocol) -> None:
        await asyncio.sleep(self.limits.login_seconds)
        if not protocol.has_initialized:
            log.warning("closing a connection that did not initialize in time")
            conn.close()

    def stats(self) -> dict[str, Any]:
        """Server-wide connection figures for moe/stats."""
        return {"connections": len(self.connections), "refusedConnections": self.refused}


def _claim_socket_path(path: Path) -> None:
    """Make `path` free for a new socket: refuse if a server answers there, remove a stale one."""
    if not path.exists() and not path.is_symlink():
        return
    answer = try_connect(path)
    if answer is None:
        path.unlink()  # stale: its server is gone
        return
    answer.close()
    raise ListenError(f"a server already listens on {path}")
