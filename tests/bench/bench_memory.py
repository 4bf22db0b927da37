"""Memory of open documents against the session's budget (setting `memoryBudgetBytes`).

Runs the server's own code in this process: a `MoeLanguageServer` with every handler, fed
framed LSP bodies through its protocol (the checks, pygls' dispatch, the handlers, the
session's document store), over a scripted engine: the engine plays no part in what documents
cost. Opens 5,000 Python documents (about 20 KB each, from the standard library) and asks a
code action in each (which reads its syntax tree), then 10 files of 1 MB, then 3 documents
over the 16 MB limit; prints this process's RSS after each step against the budget, and the
tree cost per character measured on a 1 MB file. Saves JSON and a plot in bench-results/.
`--smoke`: 500 documents, 2 files of 1 MB, 1 refused document.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from moe_lsp.inference.engine import EngineState
from moe_lsp.lsp import memory
from moe_lsp.lsp.handlers import register
from moe_lsp.lsp.server import MoeLanguageServer
from moe_lsp.lsp.service import Service
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.profiles import profile_by_name
from moe_lsp.prompts.syntax import SyntaxTree

from ..fakes import ScriptedEngine
from .report import save_results

MIB = 1024 * 1024


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def corpus(chars: int) -> list[str]:
    """Texts of about `chars` characters cut from the standard library's Python files."""
    stdlib = Path(os.__file__).parent
    text = "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))[:200]
    )
    return [text[i : i + chars] for i in range(0, len(text) - chars, chars)]


def one_mb() -> str:
    stdlib = Path(os.__file__).parent
    text = ""
    for p in sorted(stdlib.glob("*.py"), key=lambda p: p.stat().st_size, reverse=True):
        text += p.read_text(encoding="utf-8", errors="replace")
        if len(text) >= MIB:
            return text[:MIB]
    return (text * (MIB // max(len(text), 1) + 1))[:MIB]


class NoBudget:
    """What a server without a memory budget reports (to measure one for comparison)."""

    limit = 512 * MIB
    text_bytes = tree_bytes = trees = dropped = 0


class Sink:
    """pygls' writer: counts what the server wrote."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def close(self) -> None:
        pass


def make_server() -> MoeLanguageServer:
    engine = ScriptedEngine([" x"])
    service = Service(lambda config, model_dir: engine)  # type: ignore[arg-type,return-value]
    engine.start()
    service.host.engine = engine  # type: ignore[assignment]
    service.host.state = EngineState.READY
    service.profile = profile_by_name("prefix-only")
    server = MoeLanguageServer(service=service)
    register(server)
    server.protocol.set_writer(Sink())  # type: ignore[arg-type]
    return server


def body(method: str, params: Any, msg_id: int | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if msg_id is not None:
        msg["id"] = msg_id
    return json.dumps(msg).encode()


def tree_bytes_per_char(text: str) -> float:
    """RSS added by 3 trees of `text` (their own text and bytes copies included), a character."""
    spec = language_for("python", "a.py")
    SyntaxTree.create(spec, "x = 1\n")
    before = rss()
    trees = [SyntaxTree.create(spec, text + f"# {i}\n") for i in range(3)]
    grown = rss() - before
    assert all(t is not None for t in trees)
    return grown / (3 * len(text))


async def run(docs: int, big: int, refused: int) -> dict[str, Any]:
    server = make_server()
    protocol: Any = server.protocol
    ids = iter(range(1, 10**9))
    protocol.handle_body(body("initialize", {"capabilities": {}}, next(ids)))
    protocol.handle_body(body("initialized", {}))
    session = server.session
    budget = getattr(session.documents, "budget", None) or NoBudget()  # None: an older server
    steps: list[dict[str, Any]] = []
    base = rss()
    t0 = time.perf_counter()

    def note(step: str) -> None:
        grown = rss() - base
        steps.append(
            {
                "step": step,
                "rss_grown_mib": grown / MIB,
                "budget_mib": budget.limit / MIB,
                "text_mib": budget.text_bytes / MIB,
                "tree_estimate_mib": budget.tree_bytes / MIB,
                "trees": budget.trees,
                "trees_dropped": budget.dropped,
                "documents": len(session.documents),
                "pygls_workspace_documents": len(protocol.workspace.text_documents),
                "seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"{step:<28} RSS +{grown / MIB:7.1f} MiB (budget {budget.limit / MIB:.0f} MiB): "
            f"texts {budget.text_bytes / MIB:6.1f} MiB, trees ~{budget.tree_bytes / MIB:6.1f} MiB "
            f"in {budget.trees} documents ({budget.dropped} dropped), "
            f"{len(session.documents)} documents open",
            flush=True,
        )

    def open_and_ask(uri: str, text: str) -> None:
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        protocol.handle_body(body("textDocument/didOpen", {"textDocument": item}))
        at = {"line": 3, "character": 0}
        params = {
            "textDocument": {"uri": uri},
            "range": {"start": at, "end": at},
            "context": {"diagnostics": []},
        }
        protocol.handle_body(body("textDocument/codeAction", params, next(ids)))

    texts = corpus(20_000)
    for i in range(docs):
        open_and_ask(f"file:///bench/doc{i}.py", texts[i % len(texts)] + f"\n# {i}\n")
        if (i + 1) % max(docs // 5, 1) == 0:
            await asyncio.sleep(0)
            note(f"{i + 1} documents of 20 KB")
    mb = one_mb()
    for i in range(big):
        open_and_ask(f"file:///bench/big{i}.py", mb + f"\n# {i}\n")
    await asyncio.sleep(0)
    note(f"+ {big} files of 1 MB")
    huge = "x = 1\n" * (17 * MIB // 6)
    for i in range(refused):
        open_and_ask(f"file:///bench/huge{i}.py", huge + f"# {i}\n")
    del huge
    await asyncio.sleep(0)
    note(f"+ {refused} refused (over 16 MB)")
    factor = tree_bytes_per_char(mb)
    print(f"a syntax tree takes {factor:.1f} bytes a character (1 MB of Python, RSS)")
    peak = max(s["rss_grown_mib"] for s in steps)
    return {
        "steps": steps,
        "budget_mib": budget.limit / MIB,
        "peak_rss_grown_mib": peak,
        "tree_bytes_per_char": factor,
        "estimate_bytes_per_char": getattr(memory, "TREE_BYTES_PER_CHAR", None),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="500 documents, 2 of 1 MB, 1 refused")
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # one line per document let go would bury the figures
    docs, big, refused = (500, 2, 1) if args.smoke else (5000, 10, 3)
    data = asyncio.run(run(docs, big, refused))
    data["smoke"] = args.smoke
    over = data["peak_rss_grown_mib"] - data["budget_mib"]
    print(
        f"peak RSS growth {data['peak_rss_grown_mib']:.0f} MiB for a {data['budget_mib']:.0f} MiB"
        f" budget ({'within' if over <= 0 else f'{over:.0f} MiB over'})"
    )

    def draw(axes: Any) -> None:
        ax = axes[0][0]
        steps = data["steps"]
        xs = range(len(steps))
        ax.plot(xs, [s["rss_grown_mib"] for s in steps], marker="o", label="RSS growth")
        ax.plot(xs, [s["text_mib"] + s["tree_estimate_mib"] for s in steps], label="texts + trees")
        ax.axhline(data["budget_mib"], color="red", linestyle="--", label="budget")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([s["step"] for s in steps], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("MiB")
        ax.set_ylim(bottom=0)
        ax.set_title("open documents against the memory budget")
        ax.legend()

    name = "memory-smoke" if args.smoke else "memory"
    json_path, png = save_results(data, Path(args.out), name, draw, ncols=1, nrows=1)
    print(f"saved {json_path} and {png}")
    return 0 if data["peak_rss_grown_mib"] <= data["budget_mib"] * 1.25 else 1


if __name__ == "__main__":
    sys.exit(main())
