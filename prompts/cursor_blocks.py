"""The block around the cursor: its body, opener, closer and emptiness (indentation or braces)."""

from __future__ import annotations

from tree_sitter import Node

from .cursor_facts import MAX_STEPS, Body, Scope
from .cursor_lines import _indent, _width
from .cursor_nodes import (
    _ancestors,
    _is_comment,
    _last_code_leaf,
    _row_indent,
    _row_start,
    _sibling,
    _up,
)
from .cursor_scopes import _error_header, _scope, _scopes_of
from .languages import LanguageSpec

_BLOCK_LEADS = frozenset({")", "else", "do", "try", "finally", "=>"})
"""Tokens after which a `{` opens a block."""


def _brace(body: Node, kind: str) -> Node | None:
    """The body's own `{` (kind "{") or `}` (kind "}") token."""
    count = body.child_count
    indexes = range(count) if kind == "{" else range(count - 1, -1, -1)
    for i in indexes:
        child = body.child(i)
        if child is not None and child.type == kind and not child.is_missing:
            return child
    return None


def _python_colon(block: Node, spec: LanguageSpec) -> Node | None:
    sibling = _sibling(block, -1, spec)
    return sibling if sibling is not None and sibling.type == ":" else None


def _block_after_colon(colon: Node, spec: LanguageSpec) -> Node | None:
    """The Python block a `:` opens (None for a lambda's, a slice's or a dict's colon)."""
    if colon.type != ":":
        return None
    sibling = _sibling(colon, 1, spec)
    return sibling if sibling is not None and sibling.type == "block" else None


def _statements(body: Node, after: int, spec: LanguageSpec) -> bool:
    """The body holds a statement (not a comment, a docstring or a MISSING token) after `after`."""
    stack = [body]
    steps = 0
    while stack and steps < MAX_STEPS:
        node = stack.pop()
        for child in node.named_children:
            steps += 1
            if child.end_byte <= after or _is_comment(child, spec) or child.is_missing:
                continue
            if child.type == "statement_list":  # Go wraps a block's statements
                stack.append(child)
                continue
            if child.type == "expression_statement" and all(
                c.type in ("string", "concatenated_string") or _is_comment(c, spec)
                for c in child.named_children
            ):
                continue  # a docstring
            return True
    return False


def _header(body: Node, spec: LanguageSpec) -> Node:
    """The node whose first line is the body's header line."""
    parent = body.parent
    nodes = spec.nodes
    if body.type in nodes.self_headed or parent is None or parent.type in nodes.bodies:
        return body
    if parent.parent is None:  # a bare block at top level
        return body
    return parent


def _real_body(source: bytes, body: Node, spec: LanguageSpec) -> Body:
    """A body node of the tree that holds the cursor."""
    opener_end: int | None = None
    if body.type == "block" and (colon := _python_colon(body, spec)) is not None:
        opener_end = colon.end_byte
    elif body.type in spec.nodes.cases:
        colon = next((c for c in body.children if c.type == ":"), None)
        opener_end = colon.end_byte if colon is not None else None
    else:
        brace = _brace(body, "{")
        opener_end = brace.end_byte if brace is not None else None
    closer = _brace(body, "}")
    header = _header(body, spec)
    start = opener_end if opener_end is not None else body.start_byte
    return Body(
        empty=not _statements(body, start, spec),
        opener_end=opener_end,
        closer_start=closer.start_byte if closer is not None else None,
        header_row=header.start_point.row,
        header_row_start=_row_start(source, header.start_byte),
    )


def _root_body(root: Node, spec: LanguageSpec) -> Body:
    return Body(empty=not _statements(root, -1, spec))


def _python_frames(
    root: Node,
    source: bytes,
    chain: list[Node],
    last_on_line: Node | None,
    line_start_byte: int,
    line_prefix: str,
    line_suffix: str,
    spec: LanguageSpec,
) -> tuple[list[Scope], Body]:
    """Scopes and block for Python: the tree where the line has code, else indentation."""
    code_line = (line_prefix + line_suffix).strip()
    if code_line and not code_line.startswith("#"):
        block = _block_after_colon(last_on_line, spec) if last_on_line is not None else None
        if block is not None and last_on_line is not None and last_on_line.parent is not None:
            nodes = [*_ancestors(last_on_line.parent), block]
        else:
            nodes = chain
    else:
        last = _last_code_leaf(root, source, line_start_byte, spec)
        if last is None:
            nodes = [root]
        elif (block := _block_after_colon(last, spec)) is not None and last.parent is not None:
            nodes = [*_ancestors(last.parent), block]
        else:
            width = _width(_indent(line_prefix))
            nodes = [root]
            candidate = _ancestors(last)
            for i, node in enumerate(candidate):
                if node.type != "block":
                    continue
                header = _header(node, spec)
                indent = _row_indent(source, _row_start(source, header.start_byte))
                if _width(indent) >= width:
                    break
                nodes = candidate[: i + 1]
    body_node = next((n for n in reversed(nodes) if n.type == "block"), None)
    body = _real_body(source, body_node, spec) if body_node is not None else _root_body(root, spec)
    return _scopes_of(nodes, spec), body


def _brace_frames(
    root: Node, source: bytes, b: int, chain: list[Node], last: Node | None, spec: LanguageSpec
) -> tuple[list[Scope], Body]:
    """Scopes and block for brace languages: the tree, plus braces left open before `b`."""
    body_index = 0
    for i, node in enumerate(chain):
        if node.type in spec.nodes.bodies:
            brace = _brace(node, "{")
            if brace is None or brace.end_byte <= b:
                body_index = i
    container = chain[body_index]
    lo = container.start_byte
    if body_index:
        own = _brace(container, "{")
        lo = own.end_byte if own is not None else lo
    frames = _open_braces(container, lo, b) if container.has_error else []
    if not frames:
        scopes = _scopes_of(chain, spec)
        case = last.parent if last is not None and last.type == ":" else None
        if case is not None and case.type in spec.nodes.cases and case.start_byte >= lo:
            # `case 1:` with nothing after it yet ends at its colon, before the cursor
            return scopes, _real_body(source, case, spec)
        body = _real_body(source, container, spec) if body_index else _root_body(root, spec)
        return scopes, body
    scopes = _scopes_of(chain[: body_index + 1], spec)
    body = _real_body(source, container, spec) if body_index else _root_body(root, spec)
    for brace in frames:
        owner = _brace_owner(root, source, brace, scopes, spec)
        if owner is None:
            continue  # a literal's brace
        scope, first = owner
        if scope is not None:
            scopes.append(scope)
        body = Body(
            empty=_nothing_between(last, brace),
            opener_end=brace.end_byte,
            header_row=first.start_point.row,
            header_row_start=_row_start(source, first.start_byte),
        )
    return scopes, body


def _brace_owner(
    root: Node, source: bytes, brace: Node, outer: list[Scope], spec: LanguageSpec
) -> tuple[Scope | None, Node] | None:
    """What an unclosed `{` opens: (its scope or None for a plain block, the node starting its
    header line), or None when it opens a literal."""
    parent = brace.parent
    if parent is None:
        return None
    if parent.type in spec.nodes.bodies:
        # a body whose `}` tree-sitter placed (MISSING) after its `{`
        header = _header(parent, spec)
        return (_scope(header, outer, spec) if header != parent else None), header
    if parent.is_error:
        return _error_header(brace, outer, spec)
    last_child = parent.child(parent.child_count - 1)
    if last_child is None or not last_child.is_missing:
        return None  # a literal, closed after the cursor
    before = _last_code_leaf(root, source, brace.start_byte, spec)
    if before is None or before.type not in _BLOCK_LEADS:
        return None
    # JS `if (x) {` left open reads as `if (x) ({...})`: the `{` is the statement's block
    for node in _up(parent, 4)[1:]:
        if node.type in spec.nodes.scopes:
            return _scope(node, outer, spec), node
    return None, brace


def _nothing_between(last: Node | None, brace: Node) -> bool:
    """No code token between `brace` and the cursor (`last`: the last one before it)."""
    return last is None or last.end_byte <= brace.end_byte


def _open_braces(container: Node, lo: int, b: int) -> list[Node]:
    """`{` tokens in `container` between bytes `lo` and `b` whose `}` is not before `b`.

    Only subtrees with errors or holding `b` are searched: an error-free subtree that ends
    before `b` has balanced braces.
    """
    stack: list[Node] = []
    pending = [iter(container.children)]
    steps = 0
    while pending and steps < 20 * MAX_STEPS:
        child = next(pending[-1], None)
        if child is None:
            pending.pop()
            continue
        steps += 1
        if child.end_byte <= lo:
            continue
        if child.start_byte >= b:
            pending.pop()
            continue
        if child.child_count == 0:
            if child.is_missing:
                continue
            if child.type == "{" and child.end_byte <= b:
                stack.append(child)
            elif child.type == "}" and stack:
                stack.pop()
            continue
        if child.end_byte <= b and not child.has_error:
            continue
        pending.append(iter(child.children))
    return stack
