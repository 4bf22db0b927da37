"""Generations answered early and hot streaks, over a scripted engine."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from moe_lsp.lsp.generation import Generation
from moe_lsp.lsp.streaks import Streak, Streaks
from moe_lsp.prompts.postprocess import StopCheck
from moe_lsp.prompts.prompt import Mode, Prompt
from moe_lsp.prompts.reader import Reader, plan

from ..fakes import ScriptedEngine

LINE = Prompt((1,), Mode.SINGLE_LINE, "", 48, "    ", False, "", "", 10)
"""A single-line prompt at the end of an indented line."""
STREAK = replace(LINE, mode=Mode.MULTI_LINE, max_tokens=96)
"""The same prompt run as a hot streak."""


def reader() -> Reader:
    """The reader of LINE run as a hot streak (a fresh one per generation: it keeps state)."""
    return Reader(plan(LINE, 96))


def generation(engine: ScriptedEngine, timeout: float = 5) -> Generation:
    """LINE's hot streak on `engine`, stopped by its reader's rules."""
    return Generation(engine, STREAK, timeout=timeout, stop=reader().stop)


PIECES = ["total", " = 0", "\n    ", "for x", " in xs:", "\n        ", "total += x", "\n    "]
PIECES += ["return total", "\n", "\n", "def", " g():"]


async def finished(pieces: list[str], prompt: Prompt = STREAK) -> Generation:
    gen = Generation(ScriptedEngine(pieces), prompt, timeout=5, stop=reader().stop)
    await gen.done()
    return gen


async def test_generation_runs_to_its_stop_and_keeps_the_raw_text() -> None:
    engine = ScriptedEngine(PIECES)
    gen = generation(engine)
    await gen.done()
    assert gen.finished and gen.reason == "complete"
    assert gen.raw.startswith("total = 0\n    for x in xs:")
    assert engine.yielded < len(PIECES)  # stopped at the blank line, not at the end
    assert engine.running == 0


async def test_cancel_aborts_the_engine_request() -> None:
    engine = ScriptedEngine(PIECES, delay=0.05)
    gen = generation(engine)
    await asyncio.sleep(0.08)
    gen.cancel()
    await gen.done()
    assert gen.reason == "cancelled" and gen.truncated
    assert engine.requests[0][0] in engine.closed and engine.running == 0


async def test_timeout_keeps_the_text_so_far() -> None:
    gen = generation(ScriptedEngine(PIECES, delay=0.05), 0.12)
    await gen.done()
    assert gen.reason == "timeout" and gen.raw and gen.truncated


async def test_wait_returns_when_ready_or_on_timeout() -> None:
    gen = generation(ScriptedEngine(PIECES, delay=0.02))
    assert await gen.wait(lambda g: "\n" in g.raw, timeout=5)
    assert not gen.finished
    assert not await gen.wait(lambda g: False, timeout=0.01)
    gen.cancel()
    await gen.done()


async def test_engine_errors_are_kept_not_raised() -> None:
    class Broken(ScriptedEngine):
        async def stream(self, request_id, prompt_ids, sampling):  # type: ignore[override]
            raise RuntimeError("engine died")
            yield  # an async generator that fails at its first step

    gen = generation(Broken([]))
    await gen.done()
    assert gen.reason == "error" and isinstance(gen.error, RuntimeError)


async def test_a_streak_answers_the_first_line_then_keeps_generating() -> None:
    engine = ScriptedEngine(PIECES, delay=0.01)
    gen = generation(engine)
    streak = Streak.at(gen, reader(), "def f(xs):\n    ", "\n")
    assert await gen.wait(lambda _: streak.first_ready(False), timeout=5)
    assert streak.first_answer() == "total = 0"
    assert not gen.finished  # still generating the next lines
    await gen.done()
    assert streak.text() == "total = 0\n    for x in xs:\n        total += x\n    return total"


PREFIX = "def f(xs):\n    "


@pytest.mark.parametrize(
    ("typed", "suffix", "expected"),
    [
        ("", "\n", ("total = 0", True)),  # a prefetched streak: the first line
        ("tot", "\n", ("al = 0", True)),  # typing through the first line
        ("total = 0", "\n", ("\n    for x in xs:", True)),  # accepted: the next line
        ("total = 0\n    ", "\n", ("for x in xs:", True)),  # accepted and pressed Enter
        ("total = 0\n    for x in xs:\n        ", "\n", ("total += x", True)),
        ("total = 1", "\n", None),  # typed something else
    ],
)
async def test_next_piece(typed: str, suffix: str, expected: tuple[str, bool] | None) -> None:
    gen = await finished(PIECES)
    streak = Streak.at(gen, reader(), PREFIX, "\n")
    assert streak.typed(PREFIX + typed, suffix) == typed
    assert streak.next_piece(typed) == expected


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        ("def g(xs):\n    ", "\n"),  # the text before the anchor changed
        (PREFIX, "\nx = 1\n"),  # the text after it changed
        ("def f(", "\n"),  # the cursor moved back before the anchor
    ],
)
async def test_a_changed_document_is_not_served(prefix: str, suffix: str) -> None:
    gen = await finished(PIECES)
    assert Streak.at(gen, reader(), PREFIX, "\n").typed(prefix, suffix) is None


async def test_streaks_are_bounded_and_cancel_what_they_drop() -> None:
    streaks = Streaks(max_entries=2)
    gens = [generation(ScriptedEngine(PIECES, delay=0.05)) for _ in range(3)]
    for i, gen in enumerate(gens):
        streaks.put(f"file:///{i}.py", Streak.at(gen, reader(), PREFIX, "\n"))
    assert len(streaks) == 2 and streaks.get("file:///0.py") is None
    await gens[0].done()
    assert gens[0].reason == "cancelled"
    # a new streak for a document replaces (and cancels) its old one
    newer = generation(ScriptedEngine(PIECES, delay=0.05))
    streaks.put("file:///1.py", Streak.at(newer, reader(), PREFIX, "\n"))
    await gens[1].done()
    assert gens[1].reason == "cancelled" and streaks.running() == 2
    streaks.clear()
    await asyncio.gather(newer.done(), gens[2].done())
    assert len(streaks) == 0 and streaks.running() == 0


JS_BODY = Prompt(
    (1,),
    Mode.MULTI_LINE,
    "",
    160,
    "",
    True,
    "",
    "}",
    10,
    language="javascript",
    before="function f(xs) {\n  ",
    after="\n}\n",
)


@pytest.mark.parametrize(
    ("pieces", "syntax", "by_syntax"),
    [
        # the model closes the body at the end of a statement's line: the indentation says
        # nothing, tree-sitter sees that the block is over
        (["let t = 0;", "\n  ", "return t; }", "\n  ", "f();", "\n  ", "g();", "\n"], True, True),
        (["let t = 0;", "\n  ", "return t; }", "\n  ", "f();", "\n  ", "g();", "\n"], False, False),
    ],
)
def test_stop_check_sees_a_closed_body(pieces: list[str], syntax: bool, by_syntax: bool) -> None:
    check = StopCheck(JS_BODY, syntax=syntax)
    raw = ""
    stopped_at = None
    for i, piece in enumerate(pieces):
        raw += piece
        if check.done(raw):
            stopped_at = i
            break
    assert check.by_syntax is by_syntax
    assert stopped_at == (3 if by_syntax else None)  # at the end of the `}` line, or never
