"""Token budgets for the text around the cursor: line-aligned windows whose start moves in steps."""

from __future__ import annotations

import re

from .tokens import Tokenizer

MAX_CHARS_PER_TOKEN = 16
"""Upper bound on characters scanned per budget token, so huge documents stay cheap."""
DEFAULT_STEP_LINES = 32
"""The prefix window's start snaps to multiples of this many document lines."""

_NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts(text: str, lo: int = 0) -> list[int]:
    """Offsets of the line starts in text[lo:] (lo itself first)."""
    return [lo, *(m.end() for m in _NEWLINE.finditer(text, lo))]


def _starts_from(text: str, lo: int) -> list[int]:
    """Line starts at or after `lo`, beginning with the first whole line."""
    if lo <= 0:
        return line_starts(text, 0)
    m = _NEWLINE.search(text, lo - 1) if text[lo - 1] not in "\r\n" else None
    first = lo if m is None else m.end()
    if text[lo - 1 : lo + 1] == "\r\n":
        first = lo + 1
    return line_starts(text, first) if first <= len(text) else [len(text)]


_LINE_TOKENS: dict[tuple[int, str], int] = {}
LINE_CACHE_SIZE = 50_000
"""Bound on the per-line token-count cache (cleared when full)."""


def _line_tokens(tok: Tokenizer, line: str) -> int:
    """Token count of one line, cached: lines above the cursor rarely change while typing."""
    key = (id(tok), line)
    n = _LINE_TOKENS.get(key)
    if n is None:
        if len(_LINE_TOKENS) >= LINE_CACHE_SIZE:
            _LINE_TOKENS.clear()
        n = _LINE_TOKENS[key] = len(tok.encode(line))
    return n


def fit_prefix(prefix: str, tok: Tokenizer, budget: int) -> int:
    """Smallest line-start offset whose text to the end of `prefix` fits `budget` tokens.

    Lines are counted one by one (cached), then the chosen window is checked with one real
    encode and shrunk if the sum was optimistic. Falls back to a character cut for a single
    line longer than the budget.
    """
    if budget <= 0:
        return len(prefix)
    lo = max(0, len(prefix) - budget * MAX_CHARS_PER_TOKEN)
    starts = _starts_from(prefix, lo)
    ends = [*starts[1:], len(prefix)]
    total = 0
    i = len(starts)
    while i > 0:
        n = _line_tokens(tok, prefix[starts[i - 1] : ends[i - 1]])
        if total + n > budget:
            break
        total += n
        i -= 1
    while i < len(starts) and len(tok.encode(prefix[starts[i] :])) > budget:
        i += 1
    if i < len(starts):
        return starts[i]
    return max(starts[-1], len(prefix) - budget)


def stable_prefix_start(
    prefix: str, tok: Tokenizer, budget: int, step_lines: int = DEFAULT_STEP_LINES
) -> int:
    """Start of the prefix window: within budget, snapped forward to a line number divisible
    by `step_lines`, so it stays put while lines are typed below it (prefix-cache hits)."""
    start = fit_prefix(prefix, tok, budget)
    if start == 0 or step_lines <= 1:
        return start
    line_no = prefix.count("\n", 0, start)  # absolute line of `start` (\n and \r\n files)
    if prefix[start - 1 : start] != "\n":
        return start  # a character cut inside a huge line: no line to snap to
    snapped = -(-line_no // step_lines) * step_lines
    if snapped == line_no:
        return start
    offset = start
    for _ in range(snapped - line_no):
        nl = prefix.find("\n", offset)
        if nl < 0:
            return start
        offset = nl + 1
    return offset


def fit_suffix(suffix: str, tok: Tokenizer, budget: int) -> int:
    """End offset of the suffix window: whole lines after the cursor within `budget` tokens."""
    if budget <= 0 or not suffix:
        return 0
    hi = min(len(suffix), budget * MAX_CHARS_PER_TOKEN)
    ends = [m.end() for m in _NEWLINE.finditer(suffix, 0, hi)]
    if hi == len(suffix) and (not ends or ends[-1] != len(suffix)):
        ends.append(len(suffix))
    if not ends:
        return 0
    # Largest end whose text fits: binary search over line ends (token count grows with end).
    fits = [e for e in ends[:1] if len(tok.encode(suffix[:e])) <= budget]
    if not fits:
        return 0
    lo, hi_i = 0, len(ends) - 1
    while lo < hi_i:
        mid = (lo + hi_i + 1) // 2
        if len(tok.encode(suffix[: ends[mid]])) <= budget:
            lo = mid
        else:
            hi_i = mid - 1
    return ends[lo]
