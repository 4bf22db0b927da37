"""Definitions in a document, found with its language's tree-sitter queries, and their outlines."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from tree_sitter import Node, Query, QueryCursor

from .languages import LanguageSpec, language_for
from .syntax import SyntaxTree

MAX_LEADING_LINES = 12
"""Comment and attribute lines kept above a definition, at most."""

Cut = tuple[int, int, str]
"""Replace source bytes [start, end) by a text."""


@cache
def _query(language: str) -> Query | None:
    spec = language_for(language)
    source = spec.definition_query
    if not source or not spec.module:
        return None
    try:
        return Query(spec.language, source)
    except Exception:  # a grammar version without one of the node types: no definitions
        return None


@dataclass(frozen=True, slots=True)
class _Definition:
    """One definition of a name, as byte offsets into the indexed source."""

    name: str
    start_byte: int
    end_byte: int
    start_line: int
    end_line: int
    """Line after the last."""
    variants: tuple[tuple[Cut, ...], ...]
    """Ways to show it, longest first: whole, outline (members' bodies elided), signature."""


def _whole(node: Node, spec: LanguageSpec) -> Node:
    """The outermost node spanning exactly what `node` spans, below any body: a definition a
    tags query captures inside its statement (Python's module-level `assignment`)."""
    nodes = spec.nodes
    while (
        (parent := node.parent) is not None
        and parent.parent is not None
        and (parent.start_byte, parent.end_byte) == (node.start_byte, node.end_byte)
        and parent.type not in nodes.bodies
        and parent.type not in nodes.definition_bodies
    ):
        node = parent
    return node


def _simple_name(node: Node, spec: LanguageSpec) -> str:
    """`Foo::bar` -> `bar`; other names as written."""
    while (
        node.type in spec.nodes.name_wrappers
        and (inner := node.child_by_field_name("name")) is not None
    ):
        node = inner
    return (node.text or b"").decode("utf-8", "replace")


def _find_body(node: Node, spec: LanguageSpec) -> Node | None:
    """The definition's body: its `body` field, else a body-like node at most 3 levels down."""
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    level = node.named_children
    for _ in range(3):
        deeper: list[Node] = []
        for child in level:
            if child.type in spec.nodes.definition_bodies:
                return child
            body = child.child_by_field_name("body")
            if body is not None:
                return body
            deeper.extend(child.named_children)
        level = deeper
    return None


def _elide(body: Node, source: bytes, python: bool) -> Cut | None:
    """The cut that replaces a body by `...` (Python, after its docstring) or `{ ... }`."""
    if not python:
        if source[body.start_byte : body.start_byte + 1] != b"{":
            return None
        return (body.start_byte, body.end_byte, "{ ... }")
    statements = [n for n in body.named_children if n.type != "comment"]
    if body.type != "block" or not statements:
        return None
    first = statements[0]
    docstring = (
        first.type == "expression_statement"
        and first.named_child_count > 0
        and first.named_children[0].type == "string"
    )
    line_start = source.rfind(b"\n", 0, body.start_byte) + 1
    indent = source[line_start : body.start_byte].decode("utf-8", "replace")
    if not docstring:
        return (body.start_byte, body.end_byte, "...")
    if len(statements) == 1:
        return None
    return (first.end_byte, body.end_byte, ("\n" + indent if not indent.strip() else "; ") + "...")


def _member_cuts(node: Node, source: bytes, spec: LanguageSpec) -> Iterator[Cut]:
    """Cuts eliding the bodies of the functions in a container (methods of a class, impl)."""
    for child in node.named_children:
        if child.type in spec.nodes.functions:
            body = child.child_by_field_name("body")
            cut = _elide(body, source, spec.indent_blocks) if body is not None else None
            if cut is not None:
                yield cut
        else:
            yield from _member_cuts(child, source, spec)


def _starts_line(source: bytes, byte: int) -> bool:
    return not source[source.rfind(b"\n", 0, byte) + 1 : byte].strip()


def _definition(name: str, node: Node, source: bytes, spec: LanguageSpec) -> _Definition:
    outer = node
    while outer.parent is not None and outer.parent.type in spec.nodes.wrappers:
        outer = outer.parent
    first = outer
    sibling = outer.prev_named_sibling
    while (
        sibling is not None
        and sibling.type in spec.nodes.leading
        and sibling.end_point.row >= first.start_point.row - 1
        and outer.start_point.row - sibling.start_point.row <= MAX_LEADING_LINES
        and _starts_line(source, sibling.start_byte)
    ):
        first, sibling = sibling, sibling.prev_named_sibling
    start = first.start_byte
    if _starts_line(source, start):
        start = source.rfind(b"\n", 0, start) + 1  # keep the indentation (dedented later)
    end = outer.end_byte
    while end < len(source) and source[end] in b" \t;":
        end += 1  # `};` after a C struct or class
    variants: list[tuple[Cut, ...]] = [()]
    body = _find_body(node, spec)
    if body is not None:
        if node.type not in spec.nodes.functions:
            members = tuple(_member_cuts(body, source, spec))
            if members:
                variants.append(members)
        own = _elide(body, source, spec.indent_blocks)
        if own is not None:
            variants.append((own,))
    return _Definition(
        name=name,
        start_byte=start,
        end_byte=end,
        start_line=first.start_point.row,
        end_line=max(first.start_point.row + 1, outer.end_point.row + (outer.end_point.column > 0)),
        variants=tuple(variants),
    )


def _index_definitions(spec: LanguageSpec, text: str) -> tuple[bytes, dict[str, list[_Definition]]]:
    """Parse `text` and list its definitions by name (in document order)."""
    query = _query(spec.name) if spec.module else None
    syntax = SyntaxTree.create(spec, text) if query is not None else None
    if query is None or syntax is None or syntax.root is None:
        return b"", {}
    source = syntax.source
    found: dict[str, list[_Definition]] = {}
    seen: set[tuple[str, int, int]] = set()
    for _, captures in QueryCursor(query).matches(syntax.root):
        names, nodes = captures.get("name"), captures.get("def")
        if not names or not nodes:
            continue
        name, node = _simple_name(names[0], spec), _whole(nodes[0], spec)
        key = (name, node.start_byte, node.end_byte)
        if not name or key in seen:
            continue
        seen.add(key)
        found.setdefault(name, []).append(_definition(name, node, source, spec))
    for defs in found.values():
        defs.sort(key=lambda d: d.start_byte)
    return source, found


def _render(source: bytes, definition: _Definition, cuts: tuple[Cut, ...]) -> str:
    """The definition's text with `cuts` applied, dedented."""
    parts: list[str] = []
    pos = definition.start_byte
    for start, end, replacement in sorted(cuts):
        parts += (source[pos:start].decode("utf-8", "replace"), replacement)
        pos = end
    parts.append(source[pos : definition.end_byte].decode("utf-8", "replace"))
    return textwrap.dedent("".join(parts)).rstrip()
