"""Cheap text measures for cross-file context: identifier sets, line spans, costs, ranking."""

from __future__ import annotations

import heapq
import re
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

from .languages import STOPWORDS

CountTokens = Callable[[str], int]
T = TypeVar("T")
QUERY_LINES_BEFORE = 20
"""Lines before the cursor's line in the similarity query."""
QUERY_LINES_AFTER = 10
"""Lines after the cursor's line in the similarity query."""

_IDENT = re.compile(r"[^\W\d]\w+")
"""Identifier-ish words of two characters or more (a cheap split, not the model's tokenizer)."""


def _token_set(text: str) -> set[str]:
    """Distinct identifiers of `text` that are not keywords."""
    return set(map(sys.intern, _IDENT.findall(text))) - STOPWORDS


def _split_lines(text: str) -> list[str]:
    """Lines with their ends; rows are counted by '\\n' only, as tree-sitter counts them."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _span_around(text: str, offset: int, before: int, after: int) -> tuple[int, int]:
    """Offsets of lines [cursor line - before, cursor line + after] of `text`."""
    offset = max(0, min(offset, len(text)))
    start = offset
    for _ in range(before + 1):
        start = text.rfind("\n", 0, start)
        if start < 0:
            break
    start = start + 1 if start >= 0 else 0
    end = offset
    for _ in range(after + 1):
        nxt = text.find("\n", end)
        if nxt < 0:
            end = len(text)
            break
        end = nxt + 1
    return start, end


def query_around(text: str, offset: int) -> str:
    """The similarity query: the lines around the cursor."""
    start, end = _span_around(text, offset, QUERY_LINES_BEFORE, QUERY_LINES_AFTER)
    return text[start:end]


def _cost(path: str, text: str, count_tokens: CountTokens) -> int:
    """Tokens a snippet takes: its text plus its path (the label a profile renders)."""
    return count_tokens(text) + count_tokens(path)


def _overlaps(ranges: list[tuple[int, int]] | None, start: int, end: int) -> bool:
    return bool(ranges) and any(start < e and s < end for s, e in ranges or ())


def _best_first(items: list[T], first: int) -> Iterator[T]:
    """`items` in sorted order, sorting only the `first` smallest unless more are asked for."""
    top = heapq.nsmallest(first, items)
    yield from top
    if len(items) > first:
        yield from sorted(items)[first:]
