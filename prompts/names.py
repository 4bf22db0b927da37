"""Names used near the cursor that are worth a definition from another file (no tree needed)."""

from __future__ import annotations

import re
from bisect import bisect_right

from .crossfile_text import _IDENT, _span_around
from .languages import LanguageSpec

NAME_LINES_BEFORE = 20
"""Lines before the cursor's line searched for names to define."""
NAME_LINES_AFTER = 5
"""Lines after the cursor's line searched for names to define."""
MAX_NAMES = 24
"""Names near the cursor looked up, at most (nearest first)."""

_CALL = re.compile(
    r"(?:([^\W\d]\w*)[ \t]*(?:\.|::|->)[ \t]*)?([^\W\d]\w*)[ \t]*(?:<[\w \t,.:<>\[\]&*]*>)?[ \t]*\("
)
"""`foo(`, `obj.method(`, `make<T>(`; group 1 is the receiver, if any."""
_OWN = frozenset({"self", "this", "cls", "super", "Self"})
"""Receivers whose methods may be defined in another file (unlike `console.log`, `std::move`)."""
_TYPE = re.compile(r"(?<![\w$])([A-Z]\w+)")
"""Capitalized names: types and constants in nearly every language."""
_C_TYPE = re.compile(r"\b(?:struct|enum|union)[ \t]+([A-Za-z_]\w*)|\b([a-z_]\w*_t)\b")
"""C tags and `_t` typedefs."""
_ALIAS = re.compile(r"([^\W\d][\w$]*)(?:\s+as\s+([^\W\d][\w$]*))?")
_DEFINED = re.compile(
    r"\b(?:def|class|function\*?|func|fn|trait|interface|type|typedef|record"
    r"|namespace|const|let|var|static)[ \t]+(?:\([^)\n]*\)[ \t]*)?\*?([^\W\d]\w*)"
    r"|\b(?:struct|enum|union)[ \t]+([^\W\d]\w*)[ \t\r\n]*(?:<[^>{;]*>[ \t\r\n]*)?\{"
)
"""Names the current document defines, by keyword (a Go method's receiver is skipped); a
struct, enum or union only with its body (`struct buffer *b` uses `buffer`)."""
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(m: re.Match[str]) -> str:
    return _NOT_NEWLINE.sub(" ", m.group(0))


def _code_only(text: str, start: int, end: int, spec: LanguageSpec) -> str:
    """text[start:end] with comments and strings blanked (offsets and lines kept). A docstring or
    block comment open at `start` is detected by counting delimiters before it."""
    region = text[start:end]
    opened = [q for q in spec.long_strings if text.count(q, 0, start) % 2]
    if spec.block_comment is not None:
        opener, closer = spec.block_comment
        if text.rfind(opener, 0, start) > text.rfind(closer, 0, start):
            opened.append(closer)
    for closer in opened[:1]:
        close = region.find(closer)
        cut = len(region) if close < 0 else close + len(closer)
        region = _NOT_NEWLINE.sub(" ", region[:cut]) + region[cut:]
    return spec.lexical.sub(_blank, region)


def _imported(text: str, spec: LanguageSpec) -> dict[str, str]:
    """Names the document imports: local name -> name in the defining module."""
    pattern = spec.imports
    out: dict[str, str] = {}
    if pattern is None:
        return out
    for m in pattern.finditer(text):
        for group in m.groups():
            if not group:
                continue
            if spec.import_path is not None:
                group = spec.import_path.sub("", group)  # keep last path segments
            for a in _ALIAS.finditer(group):
                original, local = a.group(1), a.group(2) or a.group(1)
                if original != "as":
                    out.setdefault(local, original)
    return out


SCAN_HEAD_CHARS = 20_000
"""Start of a document scanned for imports and definitions (imports live at the top)."""
SCAN_AROUND_CHARS = 30_000
"""Text either side of the cursor scanned for names the document defines itself."""


def _scan_scope(text: str, offset: int) -> str:
    """The parts of a large document worth scanning per keystroke: its head and the cursor's
    surroundings, so the cost does not grow with the document."""
    if len(text) <= SCAN_HEAD_CHARS + 2 * SCAN_AROUND_CHARS:
        return text
    lo = max(SCAN_HEAD_CHARS, offset - SCAN_AROUND_CHARS)
    return text[:SCAN_HEAD_CHARS] + "\n" + text[lo : offset + SCAN_AROUND_CHARS]


def _defined(text: str, spec: LanguageSpec) -> set[str]:
    """Names the document defines itself (cheap regular expressions, may miss a few)."""
    names = {m.group(1) or m.group(2) for m in _DEFINED.finditer(text)}
    names.update(m.group(1) for m in spec.local_definitions.finditer(text))
    return names


def names_near_cursor(text: str, offset: int, spec: LanguageSpec) -> list[str]:
    """Names used in the lines around the cursor that are worth a definition from another file:
    called (`foo(`), used as types (`Foo`, `struct foo`, `foo_t`) or imported (`from x import
    foo`, `import {foo}`, `use a::Foo`), without keywords, builtins and names the document
    defines itself. Nearest first; imported aliases map back to their original name.

    Found with regular expressions (no tree, any language): cheap enough for every keystroke.
    """
    start, end = _span_around(text, offset, NAME_LINES_BEFORE, NAME_LINES_AFTER)
    region = _code_only(text, start, end, spec)
    cursor_line = text.count("\n", start, max(start, min(offset, len(text))))
    scope = _scan_scope(text, offset)
    imported = _imported(scope, spec)
    keywords = spec.keywords
    excluded = keywords | _defined(scope, spec)

    occurrences: list[tuple[str, int]] = []  # (name as written, offset in region)
    for m in _CALL.finditer(region):
        if m.group(1) is None or m.group(1) in _OWN or m.group(1) not in keywords:
            occurrences.append((m.group(2), m.start(2)))
    for pattern in (_TYPE, _C_TYPE):
        for m in pattern.finditer(region):
            i = 1 if m.group(1) is not None else 2
            occurrences.append((m.group(i), m.start(i)))
    if imported:
        occurrences += [(m[0], m.start()) for m in _IDENT.finditer(region) if m[0] in imported]

    starts = [0, *(m.end() for m in re.finditer("\n", region))]
    ranked: dict[str, tuple[int, int]] = {}  # original name -> (distance, offset)
    for written, pos in occurrences:
        name = imported.get(written, written)
        if len(name) < 2 or name in excluded:
            continue
        line = bisect_right(starts, pos) - 1
        rank = (abs(line - cursor_line) * 2 + (line > cursor_line), pos)
        if name not in ranked or rank < ranked[name]:
            ranked[name] = rank
    return sorted(ranked, key=ranked.__getitem__)[:MAX_NAMES]
