"""Cursor facts from lines alone (no tree): indentation, block openers, the line-rule decision."""

from __future__ import annotations

from .cursor_facts import MAX_STEPS, Facts
from .prompt import Mode

_LINE_OPENERS = (":", "{", "(", "[")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str) -> int:
    return len(indent.expandtabs(8))


def _line_facts(
    text: str, line_start: int, line_end: int, line_prefix: str, line_suffix: str
) -> Facts:
    """Block facts from indentation and the characters at line ends alone."""
    previous = _neighbour_line(text, line_start, -1)
    following = _neighbour_line(text, line_end, +1)
    if line_prefix.strip():
        opens = line_prefix.rstrip().endswith(_LINE_OPENERS)
        header = line_prefix
    else:
        opens = previous is not None and previous.rstrip().endswith(_LINE_OPENERS)
        header = previous if opens and previous is not None else ""
    if opens:
        block_indent = _indent(header)
    else:
        block_indent = _enclosing_indent(text, line_start, _width(_indent(line_prefix)))
    empty = False
    if opens:
        rest = line_suffix.strip()
        if rest:
            empty = rest[0] in ")]}"
        else:
            empty = (
                following is None
                or _width(_indent(following)) <= _width(block_indent)
                or following.strip()[0] in ")]}"
            )
    return Facts(block_empty=empty, block_indent=block_indent, after_opener=opens)


def _body_below(text: str, line_end: int, line_prefix: str) -> bool:
    """The next non-blank line is indented deeper than the cursor's (blank) line."""
    following = _neighbour_line(text, line_end, +1)
    return following is not None and _width(_indent(following)) > _width(line_prefix)


def _neighbour_line(text: str, pos: int, step: int) -> str | None:
    """The nearest non-blank line before `pos` (step -1, pos = a line start) or after it (+1)."""
    for _ in range(MAX_STEPS):
        if step < 0:
            if pos <= 0:
                return None
            end = pos - 1
            if end > 0 and text[end] == "\n" and text[end - 1] == "\r":
                end -= 1
            start = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
            line, pos = text[start:end], start
        else:
            if pos >= len(text):
                return None
            start = pos + (2 if text.startswith("\r\n", pos) else 1)
            ends = [i for i in (text.find("\n", start), text.find("\r", start)) if i >= 0]
            end = min(ends, default=len(text))
            line, pos = text[start:end], end
        if line.strip():
            return line
    return None


def _enclosing_indent(text: str, line_start: int, width: int) -> str:
    """Indentation of the nearest line above that is less indented than `width`."""
    pos = line_start
    for _ in range(MAX_STEPS):
        line = _neighbour_line(text, pos, -1)
        if line is None or width == 0:
            return ""
        indent = _indent(line)
        if _width(indent) < width:
            return indent
        # move above that line: find its start again (it is the nearest non-blank line)
        pos = text.rfind(line, 0, pos)
        if pos < 0:
            return ""
    return ""


def decide_mode(line_prefix: str, line_suffix: str) -> tuple[Mode, bool]:
    """Line rules without a tree: single line when text is right of the cursor or the line
    holds a statement, else multi-line; also whether the line ends with a block opener."""
    opens = line_prefix.rstrip().endswith(_LINE_OPENERS)
    if line_suffix.strip():
        return Mode.SINGLE_LINE, opens
    if not line_prefix.strip() or opens:
        return Mode.MULTI_LINE, opens
    return Mode.SINGLE_LINE, opens
