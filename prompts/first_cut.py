"""A long line's first answer cut after its last whole token group (before the line is whole)."""

from __future__ import annotations

BOUNDARIES = " ,([{:=+-*/<>|&"
"""Characters after which a line may be cut: the group before them is whole."""


def group_cut(line: str, min_chars: int) -> str:
    """`line` (being written, not yet whole) cut after its last whole token group, when it holds
    at least `min_chars` characters; '' when it is shorter, or holds no boundary past its first
    character. The group after the last boundary may still be growing, so it is left out."""
    if min_chars <= 0 or len(line) < min_chars:
        return ""
    cut = max(line.rfind(ch) for ch in BOUNDARIES)
    if cut <= 0:
        return ""
    return line[: cut + 1].rstrip() if line[cut] == " " else line[: cut + 1]
