"""Tree walks around the cursor: enclosing nodes, region, nearby tokens, rows and indentation."""

from __future__ import annotations

from tree_sitter import Node

from .cursor_facts import MAX_STEPS, Region
from .languages import LanguageSpec

_CLOSERS = frozenset({")", "]", "}", ";", '"', "'", "`", "string_end", '"""', "'''"})
"""Tokens that close the node they end (a cursor right after them is outside it)."""
_WHITESPACE = b" \t\r\n\f\v"


def _is_comment(node: Node, spec: LanguageSpec) -> bool:
    return node.type in spec.nodes.comments


def _closed(node: Node, spec: LanguageSpec) -> bool:
    """True when `node` ends with a token that closes it, so a cursor at its end is outside."""
    n = node
    for _ in range(MAX_STEPS):
        if _is_comment(n, spec):
            text = n.text or b""
            return text.endswith((b"*/", b"\n"))
        count = n.child_count
        if count == 0:
            if n.is_missing:
                return False
            return n.type in _CLOSERS or n.type in spec.nodes.strings
        if spec.indent_blocks and n.type == "block":
            return False
        last = n.child(count - 1)
        if last is None:
            return False
        n = last
    return False


def _chain(root: Node, b: int, spec: LanguageSpec) -> list[Node]:
    """Nodes enclosing byte `b`, root first: they start before `b` and end after it (or at `b`
    without a closing token, as an unfinished statement or a line comment does)."""
    chain = [root]
    if b <= 0:
        return chain
    # A TreeCursor: Node.first_child_for_byte crashes (tree-sitter 0.26.1) when no child matches.
    cursor = root.walk()
    for _ in range(MAX_STEPS):
        if cursor.goto_first_child_for_byte(b - 1) is None:
            break
        child = cursor.node
        if child is None or child.start_byte >= b or child.end_byte < b:
            break
        if child.end_byte == b and _closed(child, spec):
            break
        chain.append(child)
    return chain


def _ancestors(node: Node) -> list[Node]:
    """`node` and its ancestors, root first."""
    out = [node]
    parent = node.parent
    while parent is not None and len(out) < MAX_STEPS:
        out.append(parent)
        parent = parent.parent
    out.reverse()
    return out


def _region(chain: list[Node], root: Node, line_prefix: str, spec: LanguageSpec) -> Region:
    for node in reversed(chain):
        if node.type in spec.nodes.interpolations:
            return Region.CODE
        if _is_comment(node, spec):
            return Region.COMMENT
        if node.type in spec.nodes.strings:
            return Region.STRING
    if root.has_error and _open_quote(line_prefix, spec):
        return Region.STRING
    return Region.CODE


def _open_quote(line_prefix: str, spec: LanguageSpec) -> bool:
    """A string opened on this line is still open at its end (for unterminated strings, which
    tree-sitter turns into ERROR nodes)."""
    quotes, comment = spec.quotes, spec.line_comment
    i, n, open_quote = 0, len(line_prefix), ""
    while i < n:
        if open_quote:
            if line_prefix[i] == "\\":
                i += 2
                continue
            if line_prefix.startswith(open_quote, i):
                i += len(open_quote)
                open_quote = ""
                continue
            i += 1
            continue
        if line_prefix.startswith(comment, i):
            return False
        for q in quotes:
            if line_prefix.startswith(q, i):
                open_quote = q
                i += len(q)
                break
        else:
            i += 1
    return bool(open_quote)


def _skip_ws_back(source: bytes, p: int) -> int:
    """Position after the last non-whitespace byte before `p` (0 if none)."""
    while p > 0:
        lo = max(0, p - 4096)
        chunk = source[lo:p].rstrip(_WHITESPACE)
        if chunk:
            return lo + len(chunk)
        p = lo
    return 0


def _last_code_leaf(root: Node, source: bytes, b: int, spec: LanguageSpec) -> Node | None:
    """The last token ending at or before byte `b`, skipping whitespace and comments."""
    p = b
    for _ in range(64):
        p = _skip_ws_back(source, p)
        if p <= 0:
            return None
        leaf = root.descendant_for_byte_range(p - 1, p)
        if leaf is None:
            return None
        comment = next((n for n in _up(leaf, 4) if _is_comment(n, spec)), None)
        if comment is None:
            return leaf
        p = min(p - 1, comment.start_byte)
    return None


def _up(node: Node, levels: int) -> list[Node]:
    out = [node]
    while len(out) <= levels and (parent := out[-1].parent) is not None:
        out.append(parent)
    return out


def _next_code_byte(source: bytes, b: int) -> int | None:
    """Byte of the first non-blank character right of `b` on its line (None if none)."""
    end = len(source)
    for stop in (source.find(b"\n", b), source.find(b"\r", b)):
        if 0 <= stop < end:
            end = stop
    rest = source[b:end]
    stripped = rest.lstrip(_WHITESPACE)
    return b + len(rest) - len(stripped) if stripped else None


def _row_start(source: bytes, byte: int) -> int:
    return source.rfind(b"\n", 0, byte) + 1


def _row_indent(source: bytes, row_start: int) -> str:
    end = row_start
    while end < len(source) and source[end] in b" \t":
        end += 1
    return source[row_start:end].decode("utf-8", "replace")


def _completes_statement(root: Node, last: Node, spec: LanguageSpec) -> bool:
    """`last` is a `;` or `}` ending an error-free statement that sits at statement level."""
    if last.type not in (";", "}") or last.is_missing:
        return False
    node = last
    for _ in range(MAX_STEPS):
        parent = node.parent
        if parent is None or parent.end_byte != last.end_byte or parent == root:
            break
        node = parent
    parent = node.parent
    at_statement_level = parent is not None and (parent == root or parent.type in spec.nodes.bodies)
    return at_statement_level and node != last and not node.has_error


def _sibling(node: Node, step: int, spec: LanguageSpec) -> Node | None:
    """The next (`step` 1) or previous (-1) sibling that is not a comment.

    Found through the parent's children: `next_sibling` skips zero-width nodes, such as the
    empty `block` tree-sitter gives `def f():` with no body yet.
    """
    parent = node.parent
    if parent is None:
        return None
    children = parent.children
    for i, child in enumerate(children):
        if child == node:
            j = i + step
            while 0 <= j < len(children) and _is_comment(children[j], spec):
                j += step
            return children[j] if 0 <= j < len(children) else None
    return None


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace").split("\n", 1)[0].strip()[:80]
