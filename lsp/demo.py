"""`moe-lsp complete`: an editor in miniature that starts the server and asks for ghost text."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types as lsp
from pygls.client import run_async
from pygls.lsp.client import LanguageClient

LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
}


def server_command() -> list[str]:
    """How to start this package's server with the current interpreter."""
    return [sys.executable, "-m", "moe_lsp.lsp.cli", "serve"]


def utf16_column(line_text: str, column: int) -> int:
    """LSP UTF-16 character offset of the 1-based `column` (in characters) of `line_text`."""
    chars = line_text[: max(0, column - 1)]
    return len(chars.encode("utf-16-le")) // 2


class DemoClient(LanguageClient):
    """A pygls client that keeps the server's stderr out of the pipe it never reads."""

    def __init__(self) -> None:
        super().__init__("moe-lsp-demo", "0.1")
        self.status: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start_server(self, cmd: list[str], stderr: Any, *, new_session: bool = False) -> None:
        """Start `cmd` with its stdout/stdin as the LSP stream (`new_session`: in a process
        group of its own, so that it can be killed as a whole)."""
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=new_session,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self.protocol.set_writer(proc.stdin)
        self._server = proc
        self._async_tasks.append(
            asyncio.create_task(
                run_async(stop_event=self._stop_event, reader=proc.stdout, protocol=self.protocol)
            )
        )


def quiet_client() -> DemoClient:
    """A DemoClient that accepts the server's progress and status messages and shows none."""
    client = DemoClient()

    @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _create(params: Any) -> None:
        return None

    @client.feature(lsp.PROGRESS)
    def _progress(params: Any) -> None:
        return None

    @client.feature("moe/status")
    def _status(params: Any) -> None:
        return None

    return client


async def _demo(args: argparse.Namespace) -> int:
    path: Path = args.file.resolve()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not 1 <= args.line <= max(1, len(lines)):
        print(f"moe-lsp: line {args.line} is outside {path.name} (1-{len(lines)})", file=sys.stderr)
        return 2
    line_text = lines[args.line - 1] if lines else ""
    column = min(max(1, args.column), len(line_text) + 1)
    position = lsp.Position(line=args.line - 1, character=utf16_column(line_text, column))
    language = args.language or LANGUAGES.get(path.suffix, "plaintext")

    cmd = server_command()
    for flag in ("model", "dtype", "max_model_len", "kv_cache_gib", "block_size"):
        if (value := getattr(args, flag, None)) is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    if getattr(args, "log_prompts", False):
        cmd.append("--log-prompts")
    stderr = open(args.server_log, "ab") if args.server_log else subprocess.DEVNULL

    client = DemoClient()

    @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _create(params: lsp.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature("moe/status")
    def _status(params: Any) -> None:
        state = getattr(params, "state", None) or (params or {}).get("state")
        message = getattr(params, "message", None) or (params or {}).get("message", "")
        print(f"[server] {state}: {message}", file=sys.stderr, flush=True)
        client.status.put_nowait({"state": state, "message": message})

    @client.feature(lsp.PROGRESS)
    def _progress(params: lsp.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        if value.get("message"):
            print(f"[progress] {value['message']}", file=sys.stderr, flush=True)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)
    def _show(params: lsp.ShowMessageParams) -> None:
        print(f"[server] {params.message}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    await client.start_server(cmd, stderr)
    assert client._server is not None
    peak = _PeakMemory(client._server.pid)
    sampler = asyncio.create_task(peak.run())
    try:
        await client.initialize_async(
            lsp.InitializeParams(
                process_id=os.getpid(),
                root_uri=path.parent.as_uri(),
                capabilities=lsp.ClientCapabilities(
                    window=lsp.WindowClientCapabilities(work_done_progress=True),
                    general=lsp.GeneralClientCapabilities(
                        position_encodings=[lsp.PositionEncodingKind.Utf16]
                    ),
                ),
            )
        )
        client.initialized(lsp.InitializedParams())
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=path.as_uri(), language_id=language, version=1, text=text
                )
            )
        )
        state = ""
        async with asyncio.timeout(args.timeout):
            while state not in ("ready", "failed"):
                state = (await client.status.get())["state"]
        t_ready = time.perf_counter()
        if state == "failed":
            return 1
        timings = []
        result = None
        for _ in range(2):  # the second request: the same place again
            t1 = time.perf_counter()
            result = await client.text_document_inline_completion_async(
                lsp.InlineCompletionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()),
                    position=position,
                    context=lsp.InlineCompletionContext(
                        trigger_kind=lsp.InlineCompletionTriggerKind.Invoked
                    ),
                )
            )
            stats = await client.protocol.send_request_async("moe/stats", {})
            engine = getattr(stats, "engine", None)
            made = getattr(engine, "requests", None)
            timings.append((time.perf_counter() - t1, _last(stats), made))
        items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
        ghost = items[0].insert_text if items else ""
        ghost_text = ghost if isinstance(ghost, str) else ghost.value
        print(f"--- {path.name}:{args.line}:{column} ({language}) ---", file=sys.stderr)
        print(
            line_text[: column - 1] + "\x1b[2m" + ghost_text + "\x1b[0m"
            if sys.stdout.isatty()
            else ghost_text
        )
        print("---", file=sys.stderr)
        print(
            f"engine ready:      {t_ready - t0:6.1f} s (server start + model load)", file=sys.stderr
        )
        for label, (total, last, made) in zip(("first", "warm"), timings, strict=False):
            if label == "warm" and made is not None and made == timings[0][2]:
                # served from the generation the first request started (its hot streak)
                print(
                    f"same place again:  {total * 1000:.0f} ms, from the first request's "
                    "generation (no engine request)",
                    file=sys.stderr,
                )
                continue
            ttft = last.get("firstTokenMs")
            ttft_s = "-" if ttft is None else f"{ttft:.0f} ms"
            print(
                f"{label} completion: time to first token {ttft_s}, total {total * 1000:.0f} ms, "
                f"{last.get('tokens', 0)} tokens",
                file=sys.stderr,
            )
        print(
            f"peak memory:       {peak.peak / 2**30:6.2f} GiB PSS (server + engine processes)",
            file=sys.stderr,
        )
        return 0 if ghost_text else 3
    finally:
        sampler.cancel()
        try:
            await asyncio.wait_for(client.shutdown_async(None), 60)
            client.exit(None)
            await asyncio.wait_for(client.stop(), 30)
        except Exception:
            if client._server is not None and client._server.returncode is None:
                client._server.kill()
        if stderr is not subprocess.DEVNULL:
            stderr.close()


class _PeakMemory:
    """Samples the summed PSS (shared pages split fairly) of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(0.25)


def _last(stats: Any) -> dict[str, Any]:
    last = getattr(stats, "last", None)
    if last is None and isinstance(stats, dict):
        last = stats.get("last")
    if last is None:
        return {}
    return (
        last
        if isinstance(last, dict)
        else {k: getattr(last, k) for k in dir(last) if not k.startswith("_")}
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code."""
    if not args.file.is_file():
        print(f"moe-lsp: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_demo(args))
    except TimeoutError:
        print(f"moe-lsp: the model was not ready after {args.timeout:.0f} s", file=sys.stderr)
        return 1
