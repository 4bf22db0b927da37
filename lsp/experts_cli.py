"""`moe-lsp experts`: expert load from a running shared server (its socket) or a short replay."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .experts import heatmap, table

EXPERTS_REQUEST = "moe/experts"
REPLAY_MODULES = ("colorsys", "fnmatch", "shlex", "bisect")
"""Standard-library modules the replay completes in (a few cursors each)."""


class Rpc:
    """The smallest LSP client: framed JSON-RPC over a pair of byte streams."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0

    def send(self, method: str, params: Any, *, notify: bool = False) -> int | None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        rid = None
        if not notify:
            self.next_id += 1
            rid = msg["id"] = self.next_id
        data = json.dumps(msg).encode()
        self.writer.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        self.writer.flush()
        return rid

    def read(self) -> dict[str, Any]:
        length = 0
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii", "replace").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(self.reader.read(length))

    def request(self, method: str, params: Any) -> Any:
        rid = self.send(method, params)
        while True:
            msg = self.read()
            if msg.get("id") == rid and "method" not in msg:
                if "error" in msg:
                    raise RuntimeError(msg["error"].get("message", "error"))
                return msg.get("result")
            if "method" in msg and "id" in msg:  # a request from the server: answer null
                data = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}).encode()
                self.writer.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                self.writer.flush()

    def open_session(self, options: dict[str, Any] | None = None) -> None:
        self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": None,
                "capabilities": {},
                "initializationOptions": options or {},
            },
        )
        self.send("initialized", {}, notify=True)

    def close_session(self) -> None:
        try:
            self.request("shutdown", None)
            self.send("exit", None, notify=True)
        except (OSError, ConnectionError):
            pass


def from_socket(path: Path) -> dict[str, Any]:
    """moe/experts from the shared server at `path` (a session of its own, closed after)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as err:
        sock.close()
        raise ConnectionError(
            f"no shared server answers at {path} ({err.strerror}); an editor starts one through "
            "`moe-lsp connect`, or run `moe-lsp experts --replay`"
        ) from None
    with sock, sock.makefile("rb") as reader, sock.makefile("wb") as writer:
        rpc = Rpc(reader, writer)
        rpc.open_session()
        body = rpc.request(EXPERTS_REQUEST, {})
        rpc.close_session()
    return body


def replay_points(limit: int) -> list[tuple[str, str, int]]:
    """(uri, text, offset) of `limit` cursors: line ends inside standard-library functions."""
    import importlib

    points: list[tuple[str, str, int]] = []
    for name in REPLAY_MODULES:
        text = inspect.getsource(importlib.import_module(name))
        lines = text.split("\n")
        starts = [i for i, line in enumerate(lines) if line.startswith("def ")]
        for i in starts[:4]:
            offset = sum(len(x) + 1 for x in lines[: i + 2])  # the line after the signature
            points.append((f"file:///replay/{name}.py", text, offset))
    return points[:limit]


def replay(
    limit: int, timeout: float, say: Callable[[str], None], server_log: Path | None = None
) -> dict[str, Any]:
    """Start a standalone server, ask for completions at `limit` cursors, return moe/experts."""
    cmd = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve"]
    log = server_log.open("wb") if server_log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        rpc = Rpc(proc.stdout, proc.stdin)
        rpc.open_session({"engine": {"kvCacheGib": 1}})
        t0 = time.monotonic()
        while (stats := rpc.request("moe/stats", {}))["state"] != "ready":
            if stats["state"] == "failed" or time.monotonic() - t0 > timeout:
                raise RuntimeError(f"the engine did not start: {stats.get('message')}")
            time.sleep(0.5)
        say(f"engine ready in {time.monotonic() - t0:.0f} s; completing at {limit} cursors")
        opened: set[str] = set()
        for uri, text, offset in replay_points(limit):
            if uri not in opened:
                doc = {"uri": uri, "languageId": "python", "version": 1, "text": text}
                rpc.send("textDocument/didOpen", {"textDocument": doc}, notify=True)
                opened.add(uri)
            before = text[:offset]
            line = before.count("\n")
            pos = {"line": line, "character": len(before) - (before.rfind("\n") + 1)}
            rpc.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})
        time.sleep(1.0)  # the last request's routing is taken when it ends
        body = rpc.request(EXPERTS_REQUEST, {})
        rpc.close_session()
        proc.wait(timeout=60)
        return body
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server_log:
            log.close()  # type: ignore[union-attr]


def add_parser(sub: Any) -> None:
    """`moe-lsp experts` on the subcommands of `moe-lsp`."""
    p = sub.add_parser(
        "experts",
        help="per-layer expert load of a running shared server, or of a short replay",
    )
    p.add_argument("--socket", type=Path, help="the shared server's socket (default: your own)")
    p.add_argument(
        "--replay",
        action="store_true",
        help="start a server, complete at a few places in standard-library files, report",
    )
    p.add_argument("--limit", type=int, default=16, help="cursors in the replay (default 16)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the model")
    p.add_argument("--heatmap", type=Path, default=Path("moe-experts.png"), help="PNG to write")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    p.add_argument("--server-log", type=Path, help="the replay's server log (default: discard)")
    p.set_defaults(func=cmd_experts)


def cmd_experts(args: argparse.Namespace) -> int:
    def say(message: str) -> None:
        print(message, file=sys.stderr)

    try:
        if args.replay:
            body = replay(args.limit, args.timeout, say, args.server_log)
        else:
            from .connect import default_socket

            body = from_socket(args.socket or default_socket())
    except (ConnectionError, RuntimeError, OSError) as err:
        print(f"moe-lsp experts: {err}", file=sys.stderr)
        return 1
    print(table(body))
    if args.json:
        args.json.write_text(json.dumps(body, indent=2))
    if not body.get("available") or not body.get("layers"):
        return 1 if not body.get("available") else 0
    path = heatmap(body, args.heatmap)
    print(f"heatmap: {path}")
    return 0
