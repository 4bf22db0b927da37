"""The completion pipeline over a scripted engine: early stop and cancel abort, clean-up runs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from moe_lsp.lsp.pipeline import complete as run
from moe_lsp.lsp.settings import CompletionSettings
from moe_lsp.prompts.builder import Request
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.profiles import profile_by_name
from moe_lsp.prompts.syntax import SyntaxTree

from ..fakes import ScriptedEngine

PREFIX_ONLY = profile_by_name("prefix-only")


def snap(text: str) -> Request:
    cursor = text.index("|")
    text = text.replace("|", "")
    spec = language_for("python")
    return Request(text, cursor, "t.py", spec, SyntaxTree.create(spec, text), uri="file:///t.py")


async def complete(engine, tok, request, settings):
    return await run(engine, tok, request, settings, PREFIX_ONLY)


@pytest.mark.parametrize(
    ("document", "pieces", "expected", "stopped_early"),
    [
        # healed at "ret": the model re-emits it, then the line ends and the engine is stopped
        ("def f(x):\n    ret|", ["return", " x", "\n", "def", " g"], "urn x", True),
        # healed at the space; the closing bracket right of the cursor is not repeated
        ("print(a, |)\n", [" b", ")", "\n", "x"], "b", True),
        # an empty body: several lines, stopped at the dedent
        (
            "def f(x):\n|",
            ["\n    ", "y", " =", " x", "\n    ", "return", " y", "\n", "print", "("],
            "    y = x\n    return y",
            True,
        ),
        # the engine finishes by itself
        ("x = |", [" 1"], "1", False),
        # the model goes somewhere the healed text does not allow: nothing, stopped at once
        ("x = |", ["1", "2", "3"], "", True),
    ],
)
async def test_complete(tok, document, pieces, expected, stopped_early) -> None:
    engine = ScriptedEngine(pieces)
    out = await complete(engine, tok, snap(document), CompletionSettings())
    assert out.text == expected
    assert engine.running == 0
    request_id = engine.requests[0][0]
    assert (request_id in engine.closed) is stopped_early
    assert engine.yielded < len(pieces) or not stopped_early


async def test_cancel_closes_the_engine_stream(tok) -> None:
    engine = ScriptedEngine([" a"] + ["a"] * 99, delay=0.01)
    task = asyncio.ensure_future(
        complete(engine, tok, snap("x = |"), CompletionSettings(max_tokens_single=100))
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.running == 0
    assert engine.closed == [engine.requests[0][0]]


async def test_timeout_returns_text_so_far(tok) -> None:
    engine = ScriptedEngine([" a", "b", "c", "d", "e"], delay=0.05)
    out = await complete(engine, tok, snap("x = |"), CompletionSettings(timeout_seconds=0.12))
    assert out.finish_reason == "timeout"
    assert 0 < len(out.text) < 5
    assert engine.running == 0


async def test_empty_document_asks_nothing(tok) -> None:
    engine = ScriptedEngine(["x"])
    out = await complete(engine, tok, snap("|"), CompletionSettings())
    assert out.text == ""
    assert engine.requests == []


SECRET = "sk-proj-Abcdefghijklmnop1234567890QRSTuvwx"
DOCUMENT = f'API_KEY = "{SECRET}"\nunique_marker_name = 1\nx = |'


@pytest.mark.parametrize(
    ("log_prompts", "code_logged"),
    [
        (False, False),  # by default logs hold no code
        (True, True),  # the debug switch logs it, with secrets redacted
    ],
)
async def test_logs_hold_code_only_on_the_debug_switch_and_never_secrets(
    tok, caplog, log_prompts: bool, code_logged: bool
) -> None:
    engine = ScriptedEngine([" unique_marker_name", f" + {SECRET!r}", "\n"])
    with caplog.at_level(logging.DEBUG):
        out = await run(
            engine, tok, snap(DOCUMENT), CompletionSettings(), PREFIX_ONLY, log_prompts=log_prompts
        )
    assert out.raw  # the engine did answer
    logged = caplog.text
    assert ("unique_marker_name" in logged) is code_logged
    assert SECRET not in logged
