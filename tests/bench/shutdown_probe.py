"""Owns one shutdown probe: the real server over stdio, `shutdown` sent at a chosen moment.

Moments: `initializing` (`initialized` still waits for the client's answer to a settings
pull), `loading` (the engine's first process is there, the model not loaded), `generating` (a
completion-list request running), `streak` (just after a ghost text was answered, its
generation going on as a hot streak), `prefetch` (just after an accept, the prefetch running).
Every process the server started is watched from its start, so an engine process that outlives
the server is seen. Used by tests/e2e/test_shutdown_moments.py and tests/bench/bench_shutdown.py.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import psutil

SERVER = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--kv-cache-gib", "1"]
MOMENTS = ("initializing", "loading", "generating", "streak", "prefetch", "ready")
READY_TIMEOUT = 900.0
URI = "file:///work/shutdown_probe.py"
TEXT = "import math\n\n\ndef area(radius):\n    return "
CURSOR = {"line": 4, "character": 11}


@dataclass
class Outcome:
    """What one probe saw; times in ms after `shutdown` was sent."""

    moment: str
    shutdown_answered_ms: float | None = None
    shutdown_reply: dict[str, Any] | None = None
    exit_sent_ms: float | None = None
    process_gone_ms: float | None = None
    engine_gone_ms: float | None = None
    exit_code: int | None = None
    processes_left: list[int] = field(default_factory=list)
    engine_processes_seen: int = 0
    unanswered: list[Any] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.pop("shutdown_reply")
        return out


class _Client:
    """Frames messages to the server and collects what it writes back."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.ignored: set[str] = set()
        """Server requests left unanswered, as a slow client does; the others are answered."""
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self.sent: list[int] = []
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stdout: BinaryIO) -> None:
        while True:
            length = None
            while True:
                line = stdout.readline()
                if not line:
                    with self._cond:
                        self._cond.notify_all()
                    return
                if line == b"\r\n":
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = stdout.read(length or 0)
            message = json.loads(body)
            if "method" in message and "id" in message and message["method"] not in self.ignored:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            with self._cond:
                self.received.append(message)
                self._cond.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        try:
            with self._send_lock:  # one frame at a time, whatever the thread
                self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def request(self, method: str, params: Any) -> int:
        with self._send_lock:
            msg_id = next(self._ids)
            self.sent.append(msg_id)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def answer(self, msg_id: int, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.received:
                    if m.get("id") == msg_id and "method" not in m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(left, 0.5))

    def answered(self) -> set[Any]:
        with self._cond:
            return {m.get("id") for m in self.received if "method" not in m}


class _Watch:
    """Every descendant of a process, noted every 50 ms while it lives."""

    def __init__(self, pid: int) -> None:
        self.seen: dict[int, psutil.Process] = {}
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for child in self._root.children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def alive(self) -> list[psutil.Process]:
        out = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.Error:
                pass
        return out


def _stats(client: _Client) -> dict[str, Any]:
    reply = client.answer(client.request("moe/stats", {}), 30) or {}
    return reply.get("result") or {}


def _wait_ready(client: _Client) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        state = _stats(client).get("state")
        if state == "ready":
            return
        if state == "failed" or client.proc.poll() is not None:
            raise RuntimeError("the engine did not start")
        time.sleep(0.5)
    raise RuntimeError("the engine was not ready in time")


def _open(client: _Client) -> None:
    item = {"uri": URI, "languageId": "python", "version": 1, "text": TEXT}
    client.notify("textDocument/didOpen", {"textDocument": item})


def _prepare(client: _Client, moment: str, watch: _Watch) -> None:
    """Bring the server to `moment`; returns when `shutdown` should be sent."""
    if moment == "initializing":
        time.sleep(0.5)  # `initialized` waits for the client (5 s at most); loading has begun
        return
    if moment == "loading":
        deadline = time.monotonic() + 120
        while not watch.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        return
    _wait_ready(client)
    _open(client)
    doc = {"textDocument": {"uri": URI}, "position": CURSOR}
    if moment == "generating":
        client.request("textDocument/completion", {**doc, "context": {"triggerKind": 1}})
        time.sleep(0.3)
    elif moment in ("streak", "prefetch"):
        inline = client.request(
            "textDocument/inlineCompletion", {**doc, "context": {"triggerKind": 1}}
        )
        client.answer(inline, 60)
        if moment == "prefetch":
            args = {"command": "moe-lsp.accepted", "arguments": [URI, "inline"]}
            client.request("workspace/executeCommand", args)
            time.sleep(0.05)


def probe(moment: str, log_path: Path, exit_timeout: float = 30.0) -> Outcome:
    """Start the server, bring it to `moment`, send `shutdown` then `exit`; what happened."""
    if moment not in MOMENTS:
        raise ValueError(f"unknown moment {moment!r}; one of {', '.join(MOMENTS)}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    watch = _Watch(proc.pid)
    out = Outcome(moment)
    client = _Client(proc)
    try:
        # The client takes progress bars and settings pulls; `initializing` leaves the pull
        # unanswered, so that `initialized` is still running when `shutdown` comes.
        if moment == "initializing":
            client.ignored.add("workspace/configuration")
        caps = {"window": {"workDoneProgress": True}, "workspace": {"configuration": True}}
        init = client.request("initialize", {"processId": os.getpid(), "capabilities": caps})
        if client.answer(init, 60) is None:
            raise RuntimeError("initialize was not answered")
        client.notify("initialized", {})
        _prepare(client, moment, watch)
        t0 = time.perf_counter()
        shutdown = client.request("shutdown", None)
        out.shutdown_reply = client.answer(shutdown, exit_timeout)
        if out.shutdown_reply is not None:
            out.shutdown_answered_ms = (time.perf_counter() - t0) * 1000
        client.notify("exit", None)
        out.exit_sent_ms = (time.perf_counter() - t0) * 1000
        try:
            out.exit_code = proc.wait(exit_timeout)
            out.process_gone_ms = (time.perf_counter() - t0) * 1000
        except subprocess.TimeoutExpired:
            pass
        watch.stop()
        out.engine_processes_seen = len(watch.seen)
        _, alive = psutil.wait_procs(watch.alive(), timeout=exit_timeout)
        out.engine_gone_ms = (time.perf_counter() - t0) * 1000
        out.processes_left = [p.pid for p in alive]
        out.unanswered = sorted(set(client.sent) - client.answered(), key=str)
    finally:
        watch.stop()
        for p in (
            [*watch.alive(), psutil.Process(proc.pid)] if proc.poll() is None else watch.alive()
        ):
            try:
                p.kill()
            except psutil.Error:
                pass
        proc.wait(10)
    text = log_path.read_text(errors="replace")
    for needle in ("Traceback", "dictionary changed size", "did not stop"):
        if needle in text:
            out.log_problems.append(needle)
    return out
