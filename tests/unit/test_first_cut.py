"""A long line's first answer cut after a whole token group (prompts/first_cut.py, the reader)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from moe_lsp.prompts.first_cut import group_cut
from moe_lsp.prompts.prompt import Mode, Prompt
from moe_lsp.prompts.reader import Reader, plan

LINE = Prompt((1,), Mode.SINGLE_LINE, "", 48, "    ", False, "", "", 10)


@pytest.mark.parametrize(
    ("line", "min_chars", "expected"),
    [
        ("result = compute(alpha, be", 12, "result = compute(alpha,"),
        ("result = compute(alpha, be", 40, ""),  # shorter than the minimum
        ("result = compute(alpha, be", 0, ""),  # off
        ("x = foo(", 4, "x = foo("),
        ("abcdefghijkl", 4, ""),  # one group still growing: nothing whole to show
        ("return value ", 6, "return value"),  # a trailing space is not shown
    ],
)
def test_group_cut(line: str, min_chars: int, expected: str) -> None:
    assert group_cut(line, min_chars) == expected


@dataclass
class Gen:
    raw: str
    finished: bool = False
    truncated: bool = False


@pytest.mark.parametrize(
    ("raw", "cut", "ready", "answer"),
    [
        # a long line still being written: shown cut after its last whole group
        ("total = sum(values, sta", 12, True, "total = sum(values,"),
        # cut off: the line is not shown before it is whole
        ("total = sum(values, sta", 0, False, None),
        # the line is whole: the usual first answer
        ("total = 1\n    x", 12, True, "total = 1"),
        # short so far
        ("total = s", 12, False, None),
    ],
)
def test_reader_answers_a_long_line_early(
    raw: str, cut: int, ready: bool, answer: str | None
) -> None:
    reader = Reader(plan(LINE, 96), first_cut_chars=cut)
    gen = Gen(raw)
    assert reader.first_ready(gen, False) is ready
    if answer is not None:
        assert reader.first_answer(gen) == answer
