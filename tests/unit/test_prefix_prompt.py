"""Tables of cases for the prefix-only prompt: mode decision, healing, window, the full build."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.prefix_prompt import (
    build_prefix_prompt,
    decide_mode,
    heal,
    split_line_end,
    window_start,
)
from moe_lsp.prompts.prompt import Mode


@pytest.mark.parametrize(
    ("line_prefix", "line_suffix", "mode", "opens"),
    [
        ("x = foo(", ")", Mode.SINGLE_LINE, True),
        ("    return ", "", Mode.SINGLE_LINE, False),
        ("def f(x):", "", Mode.MULTI_LINE, True),
        ("", "", Mode.MULTI_LINE, False),
        ("    ", "", Mode.MULTI_LINE, False),
        ("if (x) {", "", Mode.MULTI_LINE, True),
        ("print(", ")  # note", Mode.SINGLE_LINE, True),
        ("    ", "   ", Mode.MULTI_LINE, False),
        ("total = a +", "", Mode.SINGLE_LINE, False),
    ],
)
def test_decide_mode(line_prefix: str, line_suffix: str, mode: Mode, opens: bool) -> None:
    assert decide_mode(line_prefix, line_suffix) == (mode, opens)


@pytest.mark.parametrize(
    ("text", "line", "rest"),
    [
        ("abc", "abc", ""),
        ("abc\ndef", "abc", "def"),
        ("abc\r\ndef", "abc", "def"),
        ("abc\rdef", "abc", "def"),
        ("\nx", "", "x"),
    ],
)
def test_split_line_end(text: str, line: str, rest: str) -> None:
    assert split_line_end(text) == (line, rest)


@pytest.mark.parametrize(
    ("text", "healed"),
    [
        ("def fib", "fib"),  # partial word: the model may extend it
        ("x = ", " "),  # trailing space
        ("def f():\n    ", "\n    "),  # start of an indented line
        ("print(", ""),  # punctuation stays
        ("a.b", "b"),
        ("", ""),
    ],
)
def test_heal(tok, text: str, healed: str) -> None:
    ids = tok.encode(text)
    kept, got = heal(ids, text, tok)
    assert got == healed
    assert tok.decode(kept) + got == text


def test_window_is_bounded_and_starts_at_a_line(tok) -> None:
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(400)) + "result = "
    start = window_start(prefix, tok, budget=100)
    assert start > 0
    assert prefix[start - 1] == "\n"
    assert len(tok.encode(prefix[start:])) <= 100


def test_window_keeps_small_prefix_whole(tok) -> None:
    prefix = "import os\n\ndef main():\n    "
    assert window_start(prefix, tok, budget=100) == 0


def test_window_one_huge_line_is_cut(tok) -> None:
    prefix = "x " * 100_000
    start = window_start(prefix, tok, budget=50)
    assert 0 < len(tok.encode(prefix[start:])) <= 50


@pytest.mark.parametrize(
    ("prefix", "suffix", "mode", "heal_text", "line_suffix", "next_lines"),
    [
        ("def add(a, b):\n    return a", " + b\n", Mode.SINGLE_LINE, "a", " + b", ""),
        ("def add(a, b):\n", "\nprint(1)\n", Mode.MULTI_LINE, "\n", "", "print(1)\n"),
        ("class A:\n    def f(self):", "\n", Mode.MULTI_LINE, "", "", ""),
        ("x = [1, 2", "]\r\ny = 3", Mode.SINGLE_LINE, "2", "]", "y = 3"),
    ],
)
def test_build_prefix_prompt(tok, prefix, suffix, mode, heal_text, line_suffix, next_lines) -> None:
    p = build_prefix_prompt(prefix, suffix, tok, budget=200)
    assert p.mode is mode
    assert p.heal == heal_text
    assert p.line_suffix == line_suffix
    assert p.next_lines == next_lines
    assert tok.decode(list(p.token_ids)) + p.heal == prefix
    assert p.max_tokens == (48 if mode is Mode.SINGLE_LINE else 160)
