"""Owns the latency benchmark (`make bench`): server vs engine, alternatives, cache, concurrency.

Items: 1 the server end to end against the engine it wraps; 2-4 the in-process engine against
vLLM over HTTP, plain transformers and llama.cpp; 5 cold against warm prefix cache; 7 1/4/8
concurrent clients. Same model, prompts and machine; medians, p95 and ratios.

Run `python -m tests.bench.bench_latency` (or `--smoke`). Results: a table on stdout,
<out>/latency.json and <out>/latency.png."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from moe_lsp.inference.engine import Sampling
from moe_lsp.lsp.completion import Outcome, Prepared, prepare
from moe_lsp.lsp.demo import DemoClient, server_command
from moe_lsp.lsp.service import Service
from moe_lsp.lsp.service import choose_profile as server_profile
from moe_lsp.lsp.session import Session
from moe_lsp.lsp.settings import CompletionSettings, ServerSettings
from moe_lsp.prompts.builder import Request
from moe_lsp.prompts.cursor import Region, analyze_cursor
from moe_lsp.prompts.profiles import Profile

from . import llama_cpp
from .alternatives import HfGenerate, LlamaServer, Run, VllmHttp
from .bench_engine import bench_engine
from .machine import CpuShare, machine_info
from .report import (
    Table,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    median,
    overhead,
    ratio,
    render_tables,
    save_results,
    summarize,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = (
    "textwrap.py argparse.py inspect.py typing.py dataclasses.py ast.py shlex.py string.py "
    "fnmatch.py glob.py calendar.py difflib.py heapq.py bisect.py functools.py enum.py "
    "pathlib.py tempfile.py csv.py json/encoder.py json/decoder.py configparser.py gettext.py "
    "pprint.py statistics.py fractions.py random.py shutil.py subprocess.py threading.py "
    "queue.py sched.py selectors.py tokenize.py zipfile.py tarfile.py logging/__init__.py "
    "email/message.py http/client.py urllib/parse.py contextlib.py weakref.py copy.py "
    "locale.py optparse.py pickle.py platform.py pydoc.py smtplib.py socket.py ssl.py trace.py"
).split()
ITEMS = ("server", "http", "transformers", "llama", "cache", "concurrency")
"""Names for --skip: 1 server vs engine, 2 vLLM HTTP, 3 transformers, 4 llama.cpp,
5 cold vs warm cache, 7 concurrency (6, the typing replay, is bench_typing.py)."""
WARMUP_TEXT = 'def add(a, b):\n    """Return the sum."""\n    return '
SEED = 20251129
_BOUNDARY = frozenset(" (.,=[:")
SWITCH_PAUSE = 1.5
"""Seconds between using one engine and the other: vLLM's workers busy-poll for 1 s after a
request, which would steal CPU from the other engine."""


def bench_options(max_tokens: int) -> dict[str, Any]:
    """initializationOptions for the benchmark: no debounce, no hot streak (each answer is one
    whole generation, as in-process), the same token limit for every prompt."""
    return {
        "completion": {
            "debounceFloorMs": 0,
            "debounceCeilingMs": 0,
            "hotStreakTokens": 0,
            "firstLineBudgetMs": 600_000,
            "maxTokensSingle": max_tokens,
            "maxTokensMulti": max_tokens,
            "streamGhostText": False,
        }
    }


# --- cases: real files, a cursor, the rest of its line still to type ---------------------------


@dataclass(frozen=True)
class Case:
    """A document with the cursor on a line being typed: `before` + `after` is the text."""

    name: str
    path: Path
    before: str
    after: str
    rest: str
    """The characters of the real line still to type at the cursor."""
    kind: str

    @property
    def text(self) -> str:
        return self.before + self.after

    @property
    def offset(self) -> int:
        return len(self.before)

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    @property
    def rel(self) -> str:
        try:
            return self.path.relative_to(STDLIB).as_posix()
        except ValueError:
            return self.path.name

    def position(self) -> lsp.Position:
        """The cursor as an LSP position (UTF-16 characters)."""
        line_start = self.before.rfind("\n") + 1
        column = self.before[line_start:]
        return lsp.Position(
            line=self.before.count("\n"), character=len(column.encode("utf-16-le")) // 2
        )

    def typed(self, k: int = 1) -> Case:
        """The same case after typing the next `k` characters of the line."""
        return Case(
            f"{self.name}+{k}",
            self.path,
            self.before + self.rest[:k],
            self.after,
            self.rest[k:],
            self.kind,
        )

    def request(self) -> Request:
        """The context engine's request, as the server's session builds it (one open
        document, the standard library as the workspace root)."""
        session = Session(Service())
        session.root_path = str(STDLIB)
        session.documents.open(self.uri, "python", 1, self.text)
        doc = session.documents.get(self.uri)
        assert doc is not None
        line, character = doc.position_at(self.offset, session.documents.encoding)
        snap = session.snapshot(self.uri, line, character)
        assert snap is not None
        request = session.request_for(snap)
        session.close()
        return request


def source_files() -> list[Path]:
    """The standard-library files used, in a fixed order (missing ones left out)."""
    return [STDLIB / name for name in SOURCES if (STDLIB / name).is_file()]


def _eligible(line: str, kind: str, min_rest: int) -> bool:
    stripped = line.strip()
    if len(stripped) < min_rest + 4 or stripped.startswith(("#", '"', "'", "@")):
        return False
    if kind == "line-start":
        return line.startswith("    ")
    return True


def cases_in(
    path: Path,
    count: int,
    rng: random.Random,
    lines: tuple[int, int],
    *,
    min_rest: int = 12,
    accept: Any = None,
) -> list[Case]:
    """`count` cursors in `path`, at increasing lines within `lines`, alternating a cut in the
    middle of a line (the line's end as typed so far) and the start of an indented line."""
    text = path.read_text(encoding="utf-8")
    all_lines = text.split("\n")
    lo, hi = lines
    hi = min(hi, len(all_lines) - 1)
    candidates = list(range(lo, hi))
    rng.shuffle(candidates)
    found: list[Case] = []
    for index in candidates:
        if len(found) >= count:
            break
        kind = "line-end" if len(found) % 2 == 0 else "line-start"
        line = all_lines[index]
        if not _eligible(line, kind, min_rest):
            continue
        indent = len(line) - len(line.lstrip())
        if kind == "line-start":
            cut = indent
        else:
            # After a space or punctuation, where editors ask most (a cut inside a word
            # leaves the model a partial token to heal).
            cuts = [
                i for i in range(indent + 4, len(line) - min_rest + 1) if line[i - 1] in _BOUNDARY
            ]
            cut = rng.choice(cuts) if cuts else rng.randint(indent + 4, len(line) - min_rest)
        before = "\n".join(all_lines[:index]) + "\n" + line[:cut]
        after = "\n" + "\n".join(all_lines[index + 1 :])
        case = Case(
            f"{path.relative_to(STDLIB).as_posix()}:{index + 1}:{cut + 1}",
            path,
            before,
            after,
            line[cut:],
            kind,
        )
        if accept is not None and not accept(case):
            continue
        found.append(case)
    found.sort(key=lambda c: c.offset)
    return found


# --- the prompt, exactly as the server makes it -----------------------------------------------


def choose_profile(tokenizer: Any, default_model: bool, model_dir: str) -> Profile:
    """The server's choice (`lsp.service.choose_profile`); the chat template is read from the
    model folder, as the engine would."""
    has_chat = False
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((Path(model_dir) / "tokenizer_config.json").read_text())
        has_chat = bool(config.get("chat_template"))
    tokens = list(getattr(tokenizer, "special_tokens", []) or [])
    profile, _ = server_profile(
        tokens, has_chat_template=has_chat, forced="auto", embedded_model=default_model
    )
    return profile


@dataclass
class Prompter:
    """Builds prompts with the server's settings and profile."""

    tokenizer: Any
    profile: Profile
    settings: CompletionSettings
    chat_template: Any = None

    def prepare(self, case: Case) -> Prepared | Outcome:
        return self.prepare_request(case.request())

    def prepare_request(self, request: Request) -> Prepared | Outcome:
        return prepare(
            self.tokenizer,
            request,
            self.settings,
            self.profile,
            chat_template=self.chat_template,
        )

    def ids(self, case: Case) -> list[int]:
        prepared = self.prepare(case)
        if not isinstance(prepared, Prepared):
            raise ValueError(f"no prompt at {case.name}: {prepared.finish_reason}")
        return list(prepared.prompt.token_ids)


@dataclass
class Plan:
    """Every case of one run, chosen once, deterministically."""

    server: list[Case] = field(default_factory=list)
    compare: list[Case] = field(default_factory=list)
    edits: list[Case] = field(default_factory=list)
    clients: list[Case] = field(default_factory=list)


def make_plan(args: argparse.Namespace, prompter: Prompter) -> Plan:
    """Choose the cursors: each item gets files of its own, so no item warms another's cache."""
    rng = random.Random(SEED)
    files = source_files()
    lines = (25, 75) if args.smoke else (100, 500)

    def ok(case: Case) -> bool:
        # Code, not docstrings or comments: that is where completions are asked for most.
        req = case.request()
        if analyze_cursor(req.tree, req.text, req.offset).region is not Region.CODE:
            return False
        return isinstance(prompter.prepare(case), Prepared)

    plan = Plan()
    pos = 0

    def take(count: int, per_file: int) -> list[Case]:
        nonlocal pos
        out: list[Case] = []
        while len(out) < count and pos < len(files):
            out += cases_in(files[pos], min(per_file, count - len(out)), rng, lines, accept=ok)
            pos += 1
        return out

    n = args.prompts
    plan.server = take(n, 4)
    plan.compare = take(n, 1)
    plan.edits = take(args.edits, 1)
    plan.clients = take(max(args.clients), 1)
    return plan


# --- in-process engine helpers ------------------------------------------------------------------


async def stream_once(engine: Any, ids: Sequence[int], max_tokens: int) -> Run:
    """Stream `ids` from the engine (greedy, no stop rules): time to first token, total."""
    rid = f"bench-{uuid.uuid4().hex[:12]}"
    first: float | None = None
    tokens = 0
    cached: int | None = None
    text: list[str] = []
    t0 = time.perf_counter()
    async with aclosing(
        engine.stream(rid, list(ids), Sampling(max_tokens=max(1, max_tokens)))
    ) as deltas:
        async for delta in deltas:
            if cached is None and delta.cached_tokens is not None:
                cached = delta.cached_tokens
            if delta.tokens and first is None:
                first = time.perf_counter()
            tokens += delta.tokens
            text.append(delta.text)
    end = time.perf_counter()
    return Run(
        None if first is None else (first - t0) * 1000,
        (end - t0) * 1000,
        tokens,
        "".join(text),
        cached,
    )


def run_json(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "ttft_ms": run.ttft_ms,
        "total_ms": run.total_ms,
        "tokens": run.tokens,
        "cached_tokens": run.cached,
    }


# --- the server over stdio, as an editor drives it ----------------------------------------------


class BenchClient(DemoClient):
    """The demo's LSP client, with the server in its own process group (killed as a whole)."""

    async def start_server(self, cmd: list[str], stderr: Any, *, new_session: bool = True) -> None:
        await super().start_server(cmd, stderr, new_session=new_session)


def plain(value: Any) -> Any:
    """pygls' namedtuples (results of custom requests) as dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class ServerSession:
    """One `moe-lsp serve` over stdio: initialize, open, ask for ghost text, read moe/stats."""

    def __init__(self, cmd: list[str], log: Path, options: dict[str, Any]) -> None:
        self.cmd = cmd
        self.log = log
        self.options = options
        self.client = BenchClient()
        self._log_file: Any = None
        self.started = 0.0
        self.ready_seconds: float | None = None

        @self.client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _create(params: Any) -> None:
            return None

        @self.client.feature("moe/status")
        def _status(params: Any) -> None:
            return None

        @self.client.feature(lsp.WINDOW_SHOW_MESSAGE)
        def _show(params: lsp.ShowMessageParams) -> None:
            say(f"[server] {params.message}")

    async def start(self) -> None:
        self._log_file = self.log.open("wb")
        self.started = time.monotonic()
        await self.client.start_server(self.cmd, self._log_file)
        params = lsp.InitializeParams(
            process_id=os.getpid(),
            root_uri=STDLIB.as_uri(),
            capabilities=lsp.ClientCapabilities(
                general=lsp.GeneralClientCapabilities(
                    position_encodings=[lsp.PositionEncodingKind.Utf16]
                )
            ),
            initialization_options=self.options,
        )
        await self.call(self.client.initialize_async(params), 120)
        self.client.initialized(lsp.InitializedParams())

    async def call(self, request: Any, timeout: float) -> Any:
        """Await an LSP request; fail at once if the server process exits meanwhile (a request
        to a dead server would wait forever)."""
        proc = self.client._server
        task = asyncio.ensure_future(request)
        died = asyncio.ensure_future(proc.wait()) if proc is not None else None
        waiting = {task} | ({died} if died is not None else set())
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if died is not None:
                died.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if died is not None and died in done:
            raise RuntimeError(
                f"the server exited (code {proc.returncode if proc else '?'}) during the run; "
                "was it killed from outside?"
            )
        raise TimeoutError(f"no answer from the server within {timeout:.0f} s")

    async def stats(self) -> dict[str, Any]:
        request = self.client.protocol.send_request_async("moe/stats", {})
        return plain(await self.call(request, 60))

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = await self.stats()
            if s["state"] == "ready":
                self.ready_seconds = time.monotonic() - self.started
                return
            if s["state"] == "failed":
                raise RuntimeError(f"the server's engine failed: {s.get('message')}")
            await asyncio.sleep(0.25)
        raise TimeoutError(f"the server was not ready after {timeout:.0f} s")

    async def idle(self) -> None:
        """Wait until the engine holds no request (nothing left over from the last answer)."""
        for _ in range(200):
            s = await self.stats()
            if not s.get("engine") or s["engine"].get("running", 0) == 0:
                return
            await asyncio.sleep(0.05)

    def open(self, case: Case) -> None:
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=case.uri, language_id="python", version=1, text=case.text
                )
            )
        )

    def close(self, case: Case) -> None:
        self.client.text_document_did_close(
            lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=case.uri))
        )

    def type_one(self, case: Case, version: int) -> Case:
        """didChange: the next character of the line typed at the cursor."""
        pos = case.position()
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=case.uri, version=version),
                content_changes=[
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(start=pos, end=pos), text=case.rest[0]
                    )
                ],
            )
        )
        return case.typed(1)

    async def ghost(self, case: Case) -> tuple[float, str, dict[str, Any]]:
        """(request-to-response ms, ghost text, moe/stats after it)."""
        await self.idle()
        t0 = time.perf_counter()
        result = await self.call(
            self.client.text_document_inline_completion_async(
                lsp.InlineCompletionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=case.uri),
                    position=case.position(),
                    context=lsp.InlineCompletionContext(
                        trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
                    ),
                )
            ),
            300,
        )
        elapsed = (time.perf_counter() - t0) * 1000
        items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
        text = ""
        if items:
            insert = items[0].insert_text
            text = insert if isinstance(insert, str) else insert.value
        return elapsed, text, await self.stats()

    async def stop(self) -> None:
        client = self.client
        try:
            if client._server is not None and client._server.returncode is None:
                await self.call(client.shutdown_async(None), 60)
                client.exit(None)
            await asyncio.wait_for(client.stop(), 30)
        except Exception as err:
            say(f"server shutdown: {type(err).__name__}: {err}")
        finally:
            proc = client._server
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)
            if self._log_file is not None:
                self._log_file.close()


async def engine_direct(engine: Any, prompter: Prompter, case: Case, tokens: int | None) -> dict:
    """The engine alone on the prompt the server built: same ids, as many tokens as it made."""
    request = case.request()  # the server parsed the document at didOpen, before the request
    t0 = time.perf_counter()
    prepared = prompter.prepare_request(request)
    build_ms = (time.perf_counter() - t0) * 1000
    assert isinstance(prepared, Prepared)
    ids = list(prepared.prompt.token_ids)
    run = await stream_once(engine, ids, int(tokens or prepared.prompt.max_tokens))
    return {
        "case": case.name,
        "prompt_build_ms": build_ms,
        "prompt_tokens": len(ids),
        "engine": run_json(run),
    }


async def measure_server(
    session: ServerSession,
    engine: Any,
    prompter: Prompter,
    plan: Plan,
    with_edits: bool,
    results: dict[str, Any],
) -> None:
    """Item 1: ghost text at each cursor (one document open at a time), and right after it,
    with the server idle, the in-process engine on the same prompt; then item 5 through the
    server. Interleaving puts any drift in the machine's load on both sides alike."""
    warm = Case("warmup", STDLIB / "bench_warmup.py", WARMUP_TEXT, "\n", "a + b", "line-end")
    session.open(warm)
    await session.ghost(warm)
    session.close(warm)
    await stream_once(engine, engine.tokenizer.encode(WARMUP_TEXT), 4)
    prompter.prepare(warm)  # first-use costs (tokenizer, grammar), as the server's warm-up had
    # Filled as it goes, so that a run cut short still reports what it measured.
    rows: list[dict[str, Any]] = []
    direct: list[dict[str, Any]] = []
    edits: list[dict[str, Any]] = []
    results["server"] = {"cases": rows, "edits": edits}
    results["engine"]["direct"] = direct
    for case in plan.server:
        await asyncio.sleep(SWITCH_PAUSE)
        session.open(case)
        ms, text, stats = await session.ghost(case)
        session.close(case)
        last = stats.get("last") or {}
        rows.append(
            {
                "case": case.name,
                "kind": case.kind,
                "e2e_ms": ms,
                "text": text,
                "server_total_ms": last.get("totalMs"),
                "server_first_token_ms": last.get("firstTokenMs"),
                "server_prompt_ms": last.get("promptMs"),
                "tokens": last.get("tokens"),
                "prompt_tokens": last.get("promptTokens"),
                "finish_reason": last.get("finishReason"),
            }
        )
        await asyncio.sleep(SWITCH_PAUSE)
        eng = await engine_direct(engine, prompter, case, last.get("tokens"))
        eng["same_prompt_tokens"] = last.get("promptTokens") == eng["prompt_tokens"]
        direct.append(eng)
        say(
            f"  {case.name}: server {ms:.0f} ms, engine {eng['engine']['total_ms']:.0f} ms, "
            f"{last.get('tokens')} tokens"
        )
    if with_edits:
        for case in plan.edits:
            session.open(case)
            cold_ms, _, s1 = await session.ghost(case)
            typed = session.type_one(case, 2)
            warm_ms, _, s2 = await session.ghost(typed)
            session.close(case)
            # Typing through: the rest of the shown ghost text (typing cache) or of the
            # finished generation (streak) answers without the engine.
            served = [
                key
                for key in ("from_cache", "from_streak")
                if s2["counts"].get(key, 0) > s1["counts"].get(key, 0)
            ]
            edits.append(
                {
                    "case": case.name,
                    "cold_e2e_ms": cold_ms,
                    "cold_first_token_ms": (s1.get("last") or {}).get("firstTokenMs"),
                    "warm_e2e_ms": warm_ms,
                    "warm_first_token_ms": None
                    if served
                    else (s2.get("last") or {}).get("firstTokenMs"),
                    "warm_served_without_engine": served[0] if served else None,
                }
            )
            say(f"  server edit {case.name}: cold {cold_ms:.0f} ms, warm {warm_ms:.0f} ms")
    final = await session.stats()
    results["server"]["counts"] = final.get("counts")


# --- the in-process engine --------------------------------------------------------------------


async def measure_engine(engine: Any, prompter: Prompter, plan: Plan, args: Any) -> dict[str, Any]:
    """Items 5 and 7, and the in-process reference for 2-4."""
    out: dict[str, Any] = {}
    await stream_once(engine, engine.tokenizer.encode(WARMUP_TEXT), 4)

    if "cache" not in args.skip_set:
        k = min(16, args.max_tokens)
        rows = []
        for case in plan.edits:
            cold = await stream_once(engine, prompter.ids(case), k)
            typed_ids = prompter.ids(case.typed(1))
            warm = await stream_once(engine, typed_ids, k)
            again = await stream_once(engine, typed_ids, k)
            rows.append(
                {
                    "case": case.name,
                    "prompt_tokens": len(typed_ids),
                    "cold": run_json(cold),
                    "edit": run_json(warm),
                    "same": run_json(again),
                }
            )
            say(
                f"  cache {case.name}: cold {fmt_ms(cold.ttft_ms)} ms, "
                f"+1 char {fmt_ms(warm.ttft_ms)} ms ({warm.cached} cached)"
            )
        out["cache"] = rows

    if "concurrency" not in args.skip_set:
        out["concurrency"] = await measure_concurrency(engine, prompter, plan, args)

    if {"http", "transformers", "llama"} - args.skip_set and not args.smoke:
        rows = []
        for case in plan.compare:
            ids = prompter.ids(case)
            cold = await stream_once(engine, ids, args.max_tokens)
            warm = await stream_once(engine, ids, cold.tokens)
            rows.append(
                {
                    "case": case.name,
                    "ids": ids,
                    "tokens": cold.tokens,
                    "cold": run_json(cold),
                    "warm": run_json(warm),
                }
            )
            say(f"  reference {case.name}: ttft {fmt_ms(cold.ttft_ms)} ms, {cold.tokens} tokens")
        out["compare"] = rows
    return out


async def measure_concurrency(
    engine: Any, prompter: Prompter, plan: Plan, args: Any
) -> dict[str, Any]:
    """Item 7: 1, 4, 8 clients streaming at once, each typing its own file (warm prefixes)."""
    levels = list(args.clients)
    rounds = args.rounds
    clients = plan.clients[: max(levels)]
    # Prompts of each client's keystrokes, built beforehand so only the engine is timed.
    steps_needed = {i: sum(rounds for c in levels if c > i) + 1 for i in range(len(clients))}
    prompts = {
        i: [prompter.ids(case.typed(k)) for k in range(steps_needed[i])]
        for i, case in enumerate(clients)
    }
    # Each client's file is read once (untimed), as an editor session would have done.
    await asyncio.gather(*(stream_once(engine, prompts[i][0], 1) for i in prompts))
    cursor = dict.fromkeys(prompts, 1)
    results = []
    for level in levels:
        runs: list[Run] = []

        async def client(i: int, runs: list[Run] = runs) -> None:
            for _ in range(rounds):
                ids = prompts[i][cursor[i]]
                cursor[i] += 1
                runs.append(await stream_once(engine, ids, args.max_tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(level)))
        wall = time.perf_counter() - t0
        tokens = sum(r.tokens for r in runs)
        totals = [r.total_ms for r in runs]
        ttfts = [r.ttft_ms for r in runs if r.ttft_ms is not None]
        row = {
            "clients": level,
            "requests": len(runs),
            "wall_s": wall,
            "tokens": tokens,
            "tokens_per_s": tokens / wall if wall > 0 else None,
            "latency_ms": summarize(totals),
            "ttft_ms": summarize(ttfts),
            "runs": [run_json(r) for r in runs],
        }
        results.append(row)
        say(
            f"  {level} clients: p50 {row['latency_ms']['median']:.0f} ms, "
            f"p95 {row['latency_ms']['p95']:.0f} ms, {row['tokens_per_s']:.1f} tok/s"
        )
    return {"rounds": rounds, "max_tokens": args.max_tokens, "levels": results}


# --- the alternatives ---------------------------------------------------------------------------


def measure_alternative(engine: Any, compare: list[dict[str, Any]], warm: bool) -> dict[str, Any]:
    """The comparison prompts on `engine`: cold, then (with `warm`) the same prompt again."""
    engine.complete([1, 2, 3, 4, 5, 6, 7, 8], 4)  # warm-up, as the in-process engine had
    rows = []
    for item in compare:
        cold = engine.complete(item["ids"], item["tokens"])
        again = engine.complete(item["ids"], item["tokens"]) if warm else None
        rows.append({"case": item["case"], "cold": run_json(cold), "warm": run_json(again)})
        say(
            f"  {engine.name} {item['case']}: ttft {fmt_ms(cold.ttft_ms)} ms, "
            f"total {cold.total_ms:.0f} ms, {cold.tokens} tokens"
        )
    return {"cases": rows}


# --- output -------------------------------------------------------------------------------------

_progress = sys.stderr


def say(message: str) -> None:
    """A progress line on the real stderr (engine logs may be redirected to a file)."""
    print(message, file=_progress, flush=True)


@contextlib.contextmanager
def engine_logs_to(path: Path, enabled: bool) -> Iterator[None]:
    """Send fds 1 and 2 (vLLM logs to stdout, others to stderr, here and in child processes)
    to `path`; progress lines still reach the real stderr. The table is printed after."""
    global _progress
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    _progress = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    with path.open("wb") as log:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            _progress.close()
            _progress = sys.stderr


def _values(rows: list[dict[str, Any]], *keys: str) -> list[float]:
    out = []
    for row in rows:
        value: Any = row
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            out.append(float(value))
    return out


def summarize_results(results: dict[str, Any]) -> dict[str, Any]:
    """Medians, p95 and ratios from the raw measurements."""
    s: dict[str, Any] = {}
    server = results.get("server")
    direct = (results.get("engine") or {}).get("direct")
    if server and direct:
        by_name = {eng["case"]: eng for eng in direct}
        pairs = [
            (srv, by_name[srv["case"]])
            for srv in server["cases"]
            if srv["case"] in by_name and by_name[srv["case"]]["engine"]["total_ms"]
        ]
        diffs = [srv["e2e_ms"] - eng["engine"]["total_ms"] for srv, eng in pairs]
        pcts = [
            100 * d / eng["engine"]["total_ms"] for d, (_, eng) in zip(diffs, pairs, strict=True)
        ]
        lsp_part = [
            srv["e2e_ms"] - srv["server_total_ms"] for srv, _ in pairs if srv["server_total_ms"]
        ]
        pipe_part = [
            srv["server_total_ms"] - eng["engine"]["total_ms"]
            for srv, eng in pairs
            if srv["server_total_ms"]
        ]
        e2e = [srv["e2e_ms"] for srv, _ in pairs]
        eng_total = [eng["engine"]["total_ms"] for _, eng in pairs]
        abs_ms, rel = overhead(median(e2e), median(eng_total))
        s["server"] = {
            "e2e_ms": summarize(e2e),
            "server_pipeline_ms": summarize(_values(server["cases"], "server_total_ms")),
            "server_first_token_ms": summarize(_values(server["cases"], "server_first_token_ms")),
            "engine_total_ms": summarize(eng_total),
            "engine_ttft_ms": summarize(_values(direct, "engine", "ttft_ms")),
            "prompt_build_ms": summarize(_values(direct, "prompt_build_ms")),
            "overhead_ms": summarize(diffs),
            "overhead_pct": summarize(pcts),
            "overhead_of_medians_ms": abs_ms,
            "overhead_of_medians_pct": rel,
            "lsp_transport_ms": summarize(lsp_part),
            "pipeline_minus_engine_ms": summarize(pipe_part),
            "tokens": summarize(_values(server["cases"], "tokens")),
            "prompt_tokens": summarize(_values(direct, "prompt_tokens")),
            "same_prompts": all(eng.get("same_prompt_tokens") for _, eng in pairs),
        }
    compare = (results.get("engine") or {}).get("compare")
    if compare:
        ref = {
            "ttft_cold": median(_values(compare, "cold", "ttft_ms")),
            "ttft_warm": median(_values(compare, "warm", "ttft_ms")),
            "total_cold": median(_values(compare, "cold", "total_ms")),
            "total_warm": median(_values(compare, "warm", "total_ms")),
        }
        engines: dict[str, Any] = {"in-process": _engine_summary(compare, ref)}
        for name, data in (results.get("alternatives") or {}).items():
            if isinstance(data, dict) and "cases" in data:
                engines[name] = _engine_summary(data["cases"], ref)
        s["engines"] = engines
    cache = (results.get("engine") or {}).get("cache")
    if cache:
        cold = _values(cache, "cold", "ttft_ms")
        edit = _values(cache, "edit", "ttft_ms")
        same = _values(cache, "same", "ttft_ms")
        s["cache"] = {
            "cold_ttft_ms": summarize(cold),
            "edit_ttft_ms": summarize(edit),
            "same_ttft_ms": summarize(same),
            "edit_cached_tokens": summarize(_values(cache, "edit", "cached_tokens")),
            "prompt_tokens": summarize(_values(cache, "prompt_tokens")),
            "cold_over_edit": ratio(median(cold), median(edit)),
        }
        srv_edits = (server or {}).get("edits") or []
        if srv_edits:
            s["cache"]["server"] = {
                "cold_e2e_ms": summarize(_values(srv_edits, "cold_e2e_ms")),
                "cold_first_token_ms": summarize(_values(srv_edits, "cold_first_token_ms")),
                "edit_e2e_ms": summarize(_values(srv_edits, "warm_e2e_ms")),
                "edit_first_token_ms": summarize(_values(srv_edits, "warm_first_token_ms")),
                "without_engine": sum(bool(e["warm_served_without_engine"]) for e in srv_edits),
                "n": len(srv_edits),
            }
    conc = (results.get("engine") or {}).get("concurrency")
    if conc:
        levels = {row["clients"]: row for row in conc["levels"]}
        lo, hi = min(levels), max(levels)
        s["concurrency"] = {
            "p95_ratio": ratio(levels[hi]["latency_ms"]["p95"], levels[lo]["latency_ms"]["p95"]),
            "p95_ratio_clients": [lo, hi],
            "throughput_ratio": ratio(levels[hi]["tokens_per_s"], levels[lo]["tokens_per_s"]),
        }
    return s


def _engine_summary(cases: list[dict[str, Any]], ref: dict[str, float | None]) -> dict[str, Any]:
    ttft_cold = _values(cases, "cold", "ttft_ms")
    ttft_warm = _values(cases, "warm", "ttft_ms")
    total_cold = _values(cases, "cold", "total_ms")
    total_warm = _values(cases, "warm", "total_ms")
    decode = []
    for row in cases:
        run = row.get("warm") or row.get("cold")
        if run and run.get("ttft_ms") is not None and run["tokens"] > 1:
            span = run["total_ms"] - run["ttft_ms"]
            if span > 0:
                decode.append((run["tokens"] - 1) / span * 1000)
    return {
        "ttft_cold_ms": summarize(ttft_cold),
        "ttft_warm_ms": summarize(ttft_warm),
        "total_cold_ms": summarize(total_cold),
        "total_warm_ms": summarize(total_warm),
        "decode_tok_s": median(decode),
        "ratio_ttft_cold": ratio(median(ttft_cold), ref["ttft_cold"]),
        "ratio_ttft_warm": ratio(median(ttft_warm), ref["ttft_warm"]),
        "ratio_total_cold": ratio(median(total_cold), ref["total_cold"]),
        "ratio_total_warm": ratio(median(total_warm), ref["total_warm"]),
    }


def tables(results: dict[str, Any]) -> list[Table]:
    """The printed tables."""
    s = results["summary"]
    out = []
    if "server" in s:
        v = s["server"]

        def row(label: str, d: dict[str, Any]) -> list[str]:
            return [label, fmt_ms(d["median"]), fmt_ms(d["p95"]), str(d["n"])]

        out.append(
            Table(
                "1. Server end to end (LSP inlineCompletion over stdio) vs the engine it wraps, "
                "same prompts",
                ["ms", "median", "p95", "n"],
                [
                    row("server: request -> response", v["e2e_ms"]),
                    row("server: pipeline (moe/stats totalMs)", v["server_pipeline_ms"]),
                    row("server: first token (moe/stats)", v["server_first_token_ms"]),
                    row("engine direct: same prompt ids, total", v["engine_total_ms"]),
                    row("engine direct: first token", v["engine_ttft_ms"]),
                    row("prompt build in-process (parsed doc)", v["prompt_build_ms"]),
                    row("overhead: server - engine", v["overhead_ms"]),
                    row("  of which LSP/JSON-RPC/stdio", v["lsp_transport_ms"]),
                    row("  of which prompt + clean-up", v["pipeline_minus_engine_ms"]),
                ],
                f"server overhead: {fmt_ms(v['overhead_ms']['median'])} ms median "
                f"({fmt_pct(v['overhead_pct']['median'])} of the engine's time; p95 "
                f"{fmt_ms(v['overhead_ms']['p95'])} ms); prompts "
                f"{fmt_ms(v['prompt_tokens']['median'])} tokens median, generated "
                f"{fmt_ms(v['tokens']['median'])} tokens median; identical prompt sizes: "
                f"{'yes' if v['same_prompts'] else 'NO'}",
            )
        )
    if "engines" in s:
        rows = []
        for name, e in s["engines"].items():
            rows.append(
                [
                    name,
                    fmt_ms(e["ttft_cold_ms"]["median"]),
                    fmt_ms(e["ttft_cold_ms"]["p95"]),
                    fmt_ms(e["ttft_warm_ms"]["median"]),
                    fmt_ms(e["total_cold_ms"]["median"]),
                    fmt_ms(e["total_cold_ms"]["p95"]),
                    fmt_ms(e["total_warm_ms"]["median"]),
                    fmt_ms(e["decode_tok_s"]),
                    fmt_ratio(e["ratio_ttft_cold"]),
                    fmt_ratio(e["ratio_ttft_warm"]),
                    fmt_ratio(e["ratio_total_cold"]),
                    fmt_ratio(e["ratio_total_warm"]),
                ]
            )
        for name, reason in (results.get("skipped") or {}).items():
            if name in ("http", "transformers", "llama"):
                rows.append([f"{name}: skipped ({reason})"] + [""] * 11)
        tokens = [r["tokens"] for r in results["engine"]["compare"]]
        out.append(
            Table(
                "2-4. In-process engine vs the alternatives (ratios: alternative / in-process; "
                ">1 means slower)",
                [
                    "engine",
                    "TTFT cold",
                    "p95",
                    "TTFT warm",
                    "total cold",
                    "p95",
                    "total warm",
                    "tok/s",
                    "x TTFT",
                    "x TTFT warm",
                    "x total",
                    "x total warm",
                ],
                rows,
                f"{len(tokens)} prompts (one per file) of "
                f"{fmt_ms(median(_values(results['engine']['compare'], 'prompt_tokens')))}"
                f" tokens (median), {fmt_ms(median(tokens))} generated tokens each (the "
                "in-process engine's count; the others ignore end of sequence). warm = the same "
                "prompt again. transformers has no cross-request cache (warm not run); llama.cpp "
                "runs the Q4_1 GGUF, the others bf16.",
            )
        )
    if "cache" in s:
        c = s["cache"]
        rows = [
            [
                "in-process: new prompt (cold)",
                fmt_ms(c["cold_ttft_ms"]["median"]),
                fmt_ms(c["cold_ttft_ms"]["p95"]),
            ],
            [
                "in-process: after a 1-char edit",
                fmt_ms(c["edit_ttft_ms"]["median"]),
                fmt_ms(c["edit_ttft_ms"]["p95"]),
            ],
            [
                "in-process: same prompt again",
                fmt_ms(c["same_ttft_ms"]["median"]),
                fmt_ms(c["same_ttft_ms"]["p95"]),
            ],
        ]
        if "server" in c:
            sv = c["server"]
            rows += [
                [
                    "server: new document, request -> response",
                    fmt_ms(sv["cold_e2e_ms"]["median"]),
                    fmt_ms(sv["cold_e2e_ms"]["p95"]),
                ],
                [
                    "server: new document, first token",
                    fmt_ms(sv["cold_first_token_ms"]["median"]),
                    fmt_ms(sv["cold_first_token_ms"]["p95"]),
                ],
                [
                    "server: after didChange +1 char, request -> response",
                    fmt_ms(sv["edit_e2e_ms"]["median"]),
                    fmt_ms(sv["edit_e2e_ms"]["p95"]),
                ],
                [
                    "server: after didChange +1 char, first token (engine runs)",
                    fmt_ms(sv["edit_first_token_ms"]["median"]),
                    fmt_ms(sv["edit_first_token_ms"]["p95"]),
                ],
            ]
        note = (
            f"cold / warm(+1 char) time to first token: {fmt_ratio(c['cold_over_edit'])}; "
            f"prompts {fmt_ms(c['prompt_tokens']['median'])} tokens, "
            f"{fmt_ms(c['edit_cached_tokens']['median'])} served from the prefix cache after the "
            "edit (median)"
        )
        if "server" in c:
            note += (
                f"; server: {c['server']['without_engine']} of {c['server']['n']} edits were "
                "answered by typing through (typing cache or streak), without the engine"
            )
        out.append(
            Table(
                "5. Cold vs warm prefix cache (time to first token, ms)",
                ["", "median", "p95"],
                rows,
                note,
            )
        )
    conc = (results.get("engine") or {}).get("concurrency")
    if conc:
        rows = []
        base = conc["levels"][0]["latency_ms"]["p95"]
        for row in conc["levels"]:
            rows.append(
                [
                    str(row["clients"]),
                    str(row["requests"]),
                    fmt_ms(row["ttft_ms"]["median"]),
                    fmt_ms(row["ttft_ms"]["p95"]),
                    fmt_ms(row["latency_ms"]["median"]),
                    fmt_ms(row["latency_ms"]["p95"]),
                    f"{row['tokens_per_s']:.1f}",
                    fmt_ratio(ratio(row["latency_ms"]["p95"], base)),
                ]
            )
        cs = s["concurrency"]
        lo, hi = cs["p95_ratio_clients"]
        out.append(
            Table(
                f"7. Concurrent clients on one in-process engine ({conc['max_tokens']} tokens "
                "per request, warm prefixes: each client types in its own file)",
                [
                    "clients",
                    "requests",
                    "TTFT p50",
                    "TTFT p95",
                    "latency p50",
                    "p95",
                    "tokens/s",
                    "p95 / p95@1",
                ],
                rows,
                f"p95 at {hi} clients / p95 at {lo}: {fmt_ratio(cs['p95_ratio'])} "
                f"(no batching would be ~{hi}x); throughput x{cs['throughput_ratio'] or 0:.2f}",
            )
        )
    return out


def draw(results: dict[str, Any]) -> Any:
    """The plot: item 1 per cursor, 2-4 TTFT/total per engine, 5 cold/warm, 7 concurrency."""

    def paint(axes: Any) -> None:
        s = results["summary"]
        ax = axes[0][0]
        server = results.get("server")
        direct = (results.get("engine") or {}).get("direct")
        if server and direct:
            xs = range(min(len(direct), len(server["cases"])))
            ax.bar(
                [x - 0.2 for x in xs],
                [server["cases"][x]["e2e_ms"] for x in xs],
                0.4,
                label="server (LSP, end to end)",
            )
            ax.bar(
                [x + 0.2 for x in xs],
                [direct[x]["engine"]["total_ms"] for x in xs],
                0.4,
                label="engine direct",
            )
            ax.set_xticks(list(xs), [str(x + 1) for x in xs])
            ax.set_title("1. server vs engine, per cursor")
            ax.set_ylabel("ms")
            ax.set_xlabel("cursor")
            ax.legend()
        else:
            ax.set_visible(False)
        ax = axes[0][1]
        if "engines" in s:
            names = list(s["engines"])
            keys = [
                ("ttft_cold_ms", "TTFT cold"),
                ("ttft_warm_ms", "TTFT warm"),
                ("total_cold_ms", "total cold"),
            ]
            width = 0.8 / len(keys)
            for j, (key, label) in enumerate(keys):
                vals = [s["engines"][n][key]["median"] or 0 for n in names]
                ax.bar([i + (j - 1) * width for i in range(len(names))], vals, width, label=label)
            ax.set_xticks(range(len(names)), names)
            ax.set_yscale("log")
            tallest = max(
                (s["engines"][n][key]["median"] or 1 for n in names for key, _ in keys), default=1
            )
            ax.set_ylim(top=tallest * 20)  # room for the legend above the bars
            ax.set_ylabel("ms (median, log)")
            ax.set_title("2-4. engines on the same prompts")
            ax.legend(loc="upper center", ncol=3)
        else:
            ax.set_visible(False)
        ax = axes[1][0]
        if "cache" in s:
            c = s["cache"]
            labels = ["cold", "+1 char", "same"]
            vals = [
                c["cold_ttft_ms"]["median"],
                c["edit_ttft_ms"]["median"],
                c["same_ttft_ms"]["median"],
            ]
            ax.bar(labels, [v or 0 for v in vals], color=["tab:red", "tab:green", "tab:blue"])
            ax.set_ylabel("time to first token, ms (median)")
            ax.set_title("5. prefix cache, in-process")
        else:
            ax.set_visible(False)
        ax = axes[1][1]
        conc = (results.get("engine") or {}).get("concurrency")
        if conc:
            xs = [r["clients"] for r in conc["levels"]]
            ax.plot(xs, [r["latency_ms"]["median"] for r in conc["levels"]], "o-", label="p50")
            ax.plot(xs, [r["latency_ms"]["p95"] for r in conc["levels"]], "s-", label="p95")
            ax.set_xticks(xs)
            ax.set_xlabel("clients")
            ax.set_ylabel("latency per request, ms")
            ax2 = ax.twinx()
            ax2.plot(
                xs,
                [r["tokens_per_s"] for r in conc["levels"]],
                "^--",
                color="gray",
                label="tokens/s",
            )
            ax2.set_ylabel("tokens/s (all clients)")
            ax.set_title("7. concurrency")
            ax.legend(loc="upper left")
            ax2.legend(loc="lower right")
        else:
            ax.set_visible(False)

    return paint


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the prepared default model)")
    ap.add_argument(
        "--gguf", type=Path, help="GGUF of --model for llama.cpp (default model: found)"
    )
    ap.add_argument("--prompts", type=int, help="cursors for items 1-4 (default 8, smoke 3)")
    ap.add_argument("--max-tokens", type=int, default=48, help="tokens per completion (48)")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="items 1, 5 and 7 (1 and 4 clients) only, few prompts (~2.5 min)",
    )
    ap.add_argument("--skip", default="", help=f"comma list of: {', '.join(ITEMS)}")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--verbose", action="store_true", help="engine logs on stderr, not a file")
    ap.add_argument(
        "--build-deadline",
        type=float,
        default=llama_cpp.BUILD_DEADLINE_S,
        help="seconds allowed to build llama.cpp when it is not cached (1200)",
    )
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(ITEMS)
    if unknown:
        ap.error(f"unknown --skip item(s): {', '.join(sorted(unknown))}; use {', '.join(ITEMS)}")
    if args.smoke:
        skip |= {"http", "transformers", "llama"}
    args.skip_set = skip
    args.prompts = args.prompts or (3 if args.smoke else 8)
    args.edits = 2 if args.smoke else 4
    args.clients = (1, 4) if args.smoke else (1, 4, 8)
    args.rounds = 2 if args.smoke else 3
    if args.max_tokens < 1 or args.prompts < 1:
        ap.error("--max-tokens and --prompts must be at least 1")
    return args


def model_folder(args: argparse.Namespace) -> tuple[str, bool]:
    """(model folder, whether it is the embedded default model)."""
    from moe_lsp.inference.model_store import default_model_dir, is_prepared

    if args.model:
        return str(Path(args.model).expanduser().absolute()), False
    folder = default_model_dir()
    if not is_prepared(folder):
        raise SystemExit("the default model is not prepared: run `moe-lsp model prepare`")
    return str(folder), True


async def run_async_phase(
    args: argparse.Namespace,
    model_dir: str,
    default_model: bool,
    plan: Plan,
    prompter: Prompter,
    results: dict[str, Any],
) -> None:
    """Server and in-process engine: loaded side by side, measured one after the other."""
    from moe_lsp.inference.vllm_engine import VllmEngine

    server_needed = "server" not in args.skip_set
    engine_needed = (
        server_needed
        or bool({"cache", "concurrency"} - args.skip_set)
        or (not args.smoke and bool({"http", "transformers", "llama"} - args.skip_set))
    )
    config = bench_engine(None if default_model else model_dir)
    engine = VllmEngine(config, model_dir) if engine_needed else None
    session = None
    if server_needed:
        cmd = server_command()  # its log and its engine's go to stderr, kept in a file
        if args.model:
            cmd += ["--model", model_dir]
        session = ServerSession(
            cmd, args.out / "latency-server.log", bench_options(args.max_tokens)
        )
    load_over = threading.Event()

    def start_engine() -> None:
        assert engine is not None
        try:
            engine.start()
        finally:
            load_over.set()

    def stop_engine() -> None:
        assert engine is not None
        load_over.wait(900)  # an interrupted load goes on in its thread: stop it once loaded
        engine.shutdown()

    t0 = time.monotonic()
    try:
        # Both load at once (no measurement runs while loading); measurements run one at a time.
        loads = []
        if session is not None:
            loads.append(session.start())
        if engine is not None:
            loads.append(asyncio.to_thread(start_engine))
        say("loading the server and the in-process engine ...")
        await asyncio.gather(*loads)
        if session is not None:
            await session.wait_ready(900)
        results["phases"]["load_s"] = time.monotonic() - t0
        results["phases"]["engine_load_s"] = engine.stats().load_seconds if engine else None
        results["phases"]["server_ready_s"] = session.ready_seconds if session else None
        say(f"loaded in {time.monotonic() - t0:.0f} s")
        await asyncio.sleep(3)  # let the idle engine's workers stop polling
        share = CpuShare().start()
        if engine is not None:
            prompter.tokenizer = engine.tokenizer
            prompter.chat_template = engine.chat_template
        if session is not None:
            assert engine is not None
            t1 = time.monotonic()
            say("1. server over stdio, and the engine on the same prompts ...")
            results["machine_load_before_server"] = os.getloadavg()
            try:
                await measure_server(
                    session,
                    engine,
                    prompter,
                    plan,
                    not args.smoke and "cache" not in args.skip_set,
                    results,
                )
            except (RuntimeError, TimeoutError) as err:
                say(f"  server: {err}")
                results["skipped"]["server"] = f"stopped early: {err}"
            await session.stop()
            session = None
            results["phases"]["server_s"] = time.monotonic() - t1
        if engine is not None:
            t1 = time.monotonic()
            say("in-process engine: 5, 7, reference for 2-4 ...")
            results["machine_load_before_engine"] = os.getloadavg()
            await asyncio.sleep(SWITCH_PAUSE)
            results["engine"].update(await measure_engine(engine, prompter, plan, args))
            results["phases"]["engine_s"] = time.monotonic() - t1
        results["cpu_others"]["server+engine"] = share.read()
    finally:
        if session is not None:
            await session.stop()
        if engine is not None:
            if not load_over.is_set() and not engine_loading(engine):
                load_over.set()  # the load never began
            await asyncio.to_thread(stop_engine)


def engine_loading(engine: Any) -> bool:
    """The engine's load has begun (and may still be going on in its thread)."""
    return str(engine.health().state) != "stopped"


def run_alternatives(
    args: argparse.Namespace, model_dir: str, default_model: bool, results: dict[str, Any]
) -> None:
    """Items 2-4, one server or model at a time, on the prompts the in-process engine ran."""
    compare = (results.get("engine") or {}).get("compare")
    if not compare:
        return
    from moe_lsp.inference.vllm_engine import _on_cpu, _quiet_env, build_engine_args

    alts = results["alternatives"]
    cores = machine_info().cores
    if "http" not in args.skip_set:
        say("2. vLLM OpenAI server over HTTP ...")
        t0 = time.monotonic()
        config = bench_engine(None if default_model else model_dir)
        on_cpu = _on_cpu()
        _quiet_env(config, model_dir, on_cpu)  # the same environment as the in-process engine
        engine_args = build_engine_args(config, model_dir, on_cpu=on_cpu)
        try:
            with VllmHttp(model_dir, engine_args, args.out / "latency-vllm-http.log") as srv:
                share = CpuShare().start()
                alts["vllm-http"] = measure_alternative(srv, compare, warm=True)
                results["cpu_others"]["vllm-http"] = share.read()
        except Exception as err:  # one alternative failing must not lose the others
            results["skipped"]["http"] = f"{type(err).__name__}: {err}"
        results["phases"]["http_s"] = time.monotonic() - t0
    if "transformers" not in args.skip_set:
        say("3. transformers generate ...")
        t0 = time.monotonic()
        try:
            with HfGenerate(model_dir, cores) as hf:
                share = CpuShare().start()
                alts["transformers"] = measure_alternative(hf, compare, warm=False)
                results["cpu_others"]["transformers"] = share.read()
                alts["transformers"]["load_s"] = hf.load_seconds
        except Exception as err:
            results["skipped"]["transformers"] = f"{type(err).__name__}: {err}"
        results["phases"]["transformers_s"] = time.monotonic() - t0
    if "llama" not in args.skip_set:
        built = results.get("llama_build") or {}
        server = built.get("server")
        gguf: Path | None = args.gguf
        if gguf is None and default_model and server is not None:
            try:
                gguf = llama_cpp.gguf_path()
            except Exception as err:
                results["skipped"]["llama"] = f"no GGUF: {err}"
                return
        if server is None:
            results["skipped"]["llama"] = built.get("message", "not built")
        elif gguf is None:
            results["skipped"]["llama"] = "no GGUF of --model (pass --gguf)"
        else:
            say("4. llama.cpp llama-server ...")
            t0 = time.monotonic()
            try:
                with LlamaServer(Path(server), gguf, args.out / "latency-llama.log", cores) as ls:
                    share = CpuShare().start()
                    alts["llama.cpp"] = measure_alternative(ls, compare, warm=True)
                    results["cpu_others"]["llama.cpp"] = share.read()
            except Exception as err:
                results["skipped"]["llama"] = f"{type(err).__name__}: {err}"
            results["phases"]["llama_s"] = time.monotonic() - t0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (and SIGINT, ignored in background jobs) unwind normally: every server and
    # engine started here is shut down by the `finally` blocks.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    machine = machine_info()
    say(f"machine: {machine.summary()}")
    model_dir, default_model = model_folder(args)
    results: dict[str, Any] = {
        "args": {k: v for k, v in vars(args).items() if k != "skip_set"}
        | {"skip": sorted(args.skip_set)},
        "machine": machine.to_json(),
        "model": model_dir,
        "phases": {},
        "skipped": {item: "smoke" if args.smoke else "--skip" for item in sorted(args.skip_set)},
        "alternatives": {},
        "engine": {},
        "cpu_others": {},
    }
    if "llama" not in args.skip_set:
        say(
            "4. llama.cpp: finding or building llama-server (up to "
            f"{args.build_deadline / 60:.0f} min) ..."
        )
        build = llama_cpp.build(deadline_s=args.build_deadline)
        results["llama_build"] = {
            "server": str(build.server) if build.server else None,
            "seconds": build.seconds,
            "cached": build.cached,
            "message": build.message,
        }
        say(f"   {build.message}")

    from moe_lsp.inference.tokenizer import FolderTokenizer

    tok = FolderTokenizer.from_folder(model_dir)
    settings = ServerSettings().merged(bench_options(args.max_tokens)).completion
    prompter = Prompter(tok, choose_profile(tok, default_model, model_dir), settings)
    plan = make_plan(args, prompter)
    results["plan"] = {k: [c.name for c in getattr(plan, k)] for k in vars(plan)}
    try:
        with engine_logs_to(args.out / "latency-engine.log", not args.verbose):
            asyncio.run(run_async_phase(args, model_dir, default_model, plan, prompter, results))
            run_alternatives(args, model_dir, default_model, results)
    finally:
        results["wall_s"] = time.monotonic() - started
        for row in (results.get("engine") or {}).get("compare") or []:
            row["prompt_tokens"] = len(row.get("ids", []))
        try:
            results["summary"] = summarize_results(results)
            text = render_tables(tables(results))
        except Exception as err:  # a partial run still saves what it measured
            results.setdefault("summary", {})
            text = f"(no table: {type(err).__name__}: {err})"
        header = (
            f"moe-lsp latency benchmark{' (smoke)' if args.smoke else ''}: {Path(model_dir).name}"
            f"\nmachine: {machine.summary()}\nwall time {results['wall_s']:.0f} s"
        )
        if results["cpu_others"]:
            header += "\nCPU taken by other processes while measuring (noise): " + ", ".join(
                f"{k} {100 * v['others_share']:.0f}%" for k, v in results["cpu_others"].items()
            )
        skipped = "\n".join(f"skipped {k}: {v}" for k, v in results["skipped"].items())
        results["table"] = header + "\n\n" + text + ("\n\n" + skipped if skipped else "")
        for row in (results.get("engine") or {}).get("compare") or []:
            row.pop("ids", None)
        json_path, png = save_results(results, args.out, "latency", draw(results))
        print(results["table"])
        print(f"\nsaved {json_path} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
