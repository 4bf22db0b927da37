"""Typing replay: a scripted typist writes real functions into the real server at human speed.

Per keystroke it asks for ghost text as an editor does, and accepts the ghost text when it
matches what it was going to type. Reports the share of keystrokes answered from the cache or
a hot streak, time to ghost text (p50/p95, share within 300 ms and 1 s), and the engine tokens
generated per completion shown, with the syntax-aware stop on and off. Saves JSON and a plot.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from moe_lsp.lsp.demo import DemoClient, quiet_client, server_command

from .machine import machine_info

FUNCTIONS = ("indent", "shorten")
"""Functions of the standard library's textwrap module the typist rewrites."""
SMOKE_FUNCTIONS = ("indent",)
SMOKE_CHARS = 150
"""Characters of the function typed in smoke mode."""
ANSWER_TIMEOUT = 30.0
"""A request still unanswered after this long counts as unanswered (a server bug)."""


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile of `values` (nearest rank), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def task(name: str) -> tuple[str, str]:
    """(document with the function's body removed, the body to type) for a textwrap function."""
    module = inspect.getsource(textwrap)
    source = inspect.getsource(getattr(textwrap, name))
    lines = source.split("\n")
    # the body starts after the signature line (these functions have one-line signatures);
    # the typist writes the docstring too
    body = "\n".join(lines[1:]).rstrip() + "\n"
    head = lines[0] + "\n"
    start = module.index(source)
    doc = module[:start] + head + module[start + len(source) :]
    return doc, body


class Typist:
    """One editor: types `body` at `offset` of `doc`, asking for ghost text per keystroke."""

    def __init__(self, client: DemoClient, uri: str, doc: str, offset: int, rng: random.Random):
        self.client = client
        self.uri = uri
        self.text = doc
        self.offset = offset
        self.version = 1
        self.rng = rng
        self.samples: list[dict[str, Any]] = []
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=doc
                )
            )
        )

    def position(self) -> lsp.Position:
        before = self.text[: self.offset]
        line = before.count("\n")
        return lsp.Position(line=line, character=len(before) - (before.rfind("\n") + 1))

    def insert(self, piece: str) -> None:
        at = self.position()
        self.version += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(start=at, end=at), text=piece
                    )
                ],
            )
        )
        self.text = self.text[: self.offset] + piece + self.text[self.offset :]
        self.offset += len(piece)

    async def type(self, body: str) -> None:
        """Type `body`; accept ghost text that is exactly what comes next."""
        pending: list[asyncio.Task[None]] = []
        i = 0
        while i < len(body):
            ch = body[i]
            # the editor's auto-indent: after Enter the typist does not type the indentation
            step = ch
            if ch == "\n":
                j = i + 1
                while j < len(body) and body[j] == " ":
                    j += 1
                step = body[i:j]
            self.insert(step)
            i += len(step)
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            sample: dict[str, Any] = {
                "sent": time.monotonic(),
                "ms": None,
                "text": "",
                "cancelled": False,
            }
            self.samples.append(sample)
            pending.append(asyncio.create_task(self.ask(answer, sample, self.position())))
            # human speed: 5-9 characters a second, longer after a line
            pause = self.rng.uniform(0.11, 0.2) + (0.35 if ch == "\n" else 0.0)
            try:
                ghost = await asyncio.wait_for(asyncio.shield(answer), pause)
            except TimeoutError:
                ghost = None
            if ghost and body.startswith(ghost, i):
                await asyncio.sleep(0.15)  # the user reads it, then presses Tab
                self.insert(ghost)
                i += len(ghost)
                await self.client.workspace_execute_command_async(
                    lsp.ExecuteCommandParams(
                        command="moe-lsp.accepted", arguments=[self.uri, "inline"]
                    )
                )
                sample["accepted"] = True
                continue
            elapsed = time.monotonic() - sample["sent"]
            if elapsed < pause:
                await asyncio.sleep(pause - elapsed)
        await asyncio.gather(*pending, return_exceptions=True)

    async def ask(
        self, answer: asyncio.Future[Any], sample: dict[str, Any], position: lsp.Position
    ) -> None:
        sent = sample["sent"]
        try:
            request = self.client.text_document_inline_completion_async(
                lsp.InlineCompletionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=self.uri),
                    position=position,
                    context=lsp.InlineCompletionContext(
                        trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
                    ),
                )
            )
            result = await asyncio.wait_for(request, ANSWER_TIMEOUT)
        except TimeoutError:
            sample["error"] = f"no answer in {ANSWER_TIMEOUT:.0f} s"
            print(f"unanswered request at {position}", file=sys.stderr)
            if not answer.done():
                answer.set_result(None)
            return
        except Exception as err:  # superseded by the next keystroke
            sample["cancelled"] = "cancel" in str(err).lower()
            sample["error"] = None if sample["cancelled"] else str(err)
            if not answer.done():
                answer.set_result(None)
            return
        sample["ms"] = (time.monotonic() - sent) * 1000
        items = result.items if result is not None else []
        sample["text"] = items[0].insert_text if items else ""
        if not answer.done():
            answer.set_result(sample["text"] or None)


async def stats(client: DemoClient) -> Any:
    return await client.protocol.send_request_async("moe/stats", {})


async def replay(
    client: DemoClient, functions: tuple[str, ...], label: str, seed: int, limit: int | None
) -> dict:
    before = await stats(client)
    rng = random.Random(seed)
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for name in functions:
        doc, body = task(name)
        offset = doc.index(inspect.getsource(getattr(textwrap, name)).split("\n")[0] + "\n")
        offset += len(inspect.getsource(getattr(textwrap, name)).split("\n")[0]) + 1
        typist = Typist(client, f"file:///replay/{label}/{name}.py", doc, offset, rng)
        await typist.type(body[:limit] if limit else body)
        samples += typist.samples
        client.text_document_did_close(
            lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=typist.uri))
        )
    for _ in range(100):  # let streaks finish so their tokens are counted
        after = await stats(client)
        if after.engine.running == 0:
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - t0
    c0, c1 = before.counts, after.counts
    delta = {k: v - getattr(c0, k, 0) for k, v in fields(c1).items()}
    tokens = after.engine.generatedTokens - before.engine.generatedTokens
    engine_requests = after.engine.requests - before.engine.requests
    answered = [s for s in samples if s["ms"] is not None]
    shown = [s for s in answered if s["text"]]
    ms = [s["ms"] for s in answered]
    shown_ms = [s["ms"] for s in shown]
    keystrokes = len(samples)
    return {
        "label": label,
        "keystrokes": keystrokes,
        "seconds": seconds,
        "answered": len(answered),
        "cancelled": sum(1 for s in samples if s["cancelled"]),
        "errors": sum(1 for s in samples if s.get("error") and "no answer" not in s["error"]),
        "shown": len(shown),
        "accepted": sum(1 for s in samples if s.get("accepted")),
        "from_cache": delta.get("from_cache", 0),
        "from_streak": delta.get("from_streak", 0),
        "served_without_engine_share": (delta.get("from_cache", 0) + delta.get("from_streak", 0))
        / max(1, keystrokes),
        "stopped_by_syntax": delta.get("stopped_by_syntax", 0),
        "engine_requests": engine_requests,
        "generated_tokens": tokens,
        "tokens_per_shown": tokens / max(1, len(shown)),
        "tokens_per_engine_request": tokens / max(1, engine_requests),
        "p50_ms": pct(ms, 0.5),
        "p95_ms": pct(ms, 0.95),
        "p50_shown_ms": pct(shown_ms, 0.5),
        "p95_shown_ms": pct(shown_ms, 0.95),
        "ghost_within_300ms": sum(1 for v in shown_ms if v <= 300) / max(1, keystrokes),
        "ghost_within_1s": sum(1 for v in shown_ms if v <= 1000) / max(1, keystrokes),
        "unanswered": sum(1 for s in samples if (s.get("error") or "").startswith("no answer")),
        "latencies_ms": ms,
    }


def fields(obj: Any) -> dict[str, Any]:
    """The fields of a JSON object as the client decoded it (a named tuple or a dict)."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "_asdict"):
        return dict(obj._asdict())
    return dict(vars(obj))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    client = quiet_client()

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)
    def _show(params: Any) -> None:
        print(f"server: {params.message}", file=sys.stderr)

    log = open(args.out / "typing-server.log", "w")
    await client.start_server(server_command(), stderr=log)
    try:
        await client.initialize_async(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(),
                initialization_options={
                    "engine": {"kvCacheGib": 1},
                    "logPrompts": bool(args.log_prompts),
                },
            )
        )
        client.initialized(lsp.InitializedParams())
        t0 = time.monotonic()
        while (s := await stats(client)).state != "ready":
            if s.state == "failed":
                raise SystemExit(f"engine failed: {s.message}")
            await asyncio.sleep(0.5)
        print(f"engine ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        functions = SMOKE_FUNCTIONS if args.smoke else FUNCTIONS
        results = []
        for label, syntax in (("syntax-stop", True), ("no-syntax-stop", False)):
            client.workspace_did_change_configuration(
                lsp.DidChangeConfigurationParams(settings={"completion": {"syntaxStop": syntax}})
            )
            print(f"replay: {label} ...", file=sys.stderr)
            limit = SMOKE_CHARS if args.smoke else None
            results.append(await replay(client, functions, label, args.seed, limit))
        await asyncio.wait_for(client.shutdown_async(None), 60)
        client.exit(None)
    finally:
        proc = client._server
        try:
            await asyncio.wait_for(client.stop(), 30)
        except TimeoutError:
            if proc is not None and proc.returncode is None:
                proc.kill()
        log.close()
    return {"machine": machine_info().to_json(), "functions": list(functions), "runs": results}


def table(report: dict[str, Any]) -> str:
    runs = report["runs"]
    rows = [
        ("keystrokes", "keystrokes", "{:d}"),
        ("answered (not superseded)", "answered", "{:d}"),
        ("unanswered", "unanswered", "{:d}"),
        ("ghost text shown", "shown", "{:d}"),
        ("accepted by the typist", "accepted", "{:d}"),
        ("served from cache", "from_cache", "{:d}"),
        ("served from a hot streak", "from_streak", "{:d}"),
        ("share served without the engine", "served_without_engine_share", "{:.1%}"),
        ("time to answer p50 (ms)", "p50_ms", "{:.0f}"),
        ("time to answer p95 (ms)", "p95_ms", "{:.0f}"),
        ("time to ghost text p50 (ms)", "p50_shown_ms", "{:.0f}"),
        ("time to ghost text p95 (ms)", "p95_shown_ms", "{:.0f}"),
        ("keystrokes with ghost text <= 300 ms", "ghost_within_300ms", "{:.1%}"),
        ("keystrokes with ghost text <= 1 s", "ghost_within_1s", "{:.1%}"),
        ("engine requests", "engine_requests", "{:d}"),
        ("stopped by tree-sitter", "stopped_by_syntax", "{:d}"),
        ("engine tokens generated", "generated_tokens", "{:d}"),
        ("tokens per ghost text shown", "tokens_per_shown", "{:.1f}"),
        ("tokens per engine request", "tokens_per_engine_request", "{:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    out = [f"{'':<{width}}  " + "  ".join(f"{r['label']:>15}" for r in runs)]
    for title, key, fmt in rows:
        cells = []
        for r in runs:
            v = r.get(key)
            cells.append(f"{'-' if v is None else fmt.format(v):>15}")
        out.append(f"{title:<{width}}  " + "  ".join(cells))
    a, b = runs[0], runs[-1]
    if b["tokens_per_engine_request"]:
        ratio = a["tokens_per_engine_request"] / b["tokens_per_engine_request"]
        out.append(f"tokens per engine request, with / without the syntax stop: {ratio:.2f}")
    m = report["machine"]
    out.append(f"machine: {m['cores']} cores, {m['cpu_model']}")
    return "\n".join(out)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in report["runs"]:
        values = sorted(r["latencies_ms"])
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=r["label"])
    ax.axvline(300, color="grey", linestyle=":", linewidth=1)
    ax.axvline(1000, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("time to answer an inline completion request (ms, log)")
    ax.set_ylabel("share of answered keystrokes")
    ax.set_title("Typing replay over textwrap.py, real server and engine")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    if "--peers" in sys.argv[1:]:
        # the side-by-side replay: moe-lsp, a llama.vim-like and an llm-ls-like client
        from .typing_compare import main as peers

        return peers(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one short function per run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--log-prompts", action="store_true", help="the server log holds prompts (redacted)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(args))
    name = "typing-smoke" if args.smoke else "typing"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2))
    plot(report, args.out / f"{name}.png")
    print(table(report))
    print(f"saved {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    bad = sum(r["unanswered"] + r["errors"] for r in report["runs"])
    if bad:
        print(f"{bad} requests unanswered or failed", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
