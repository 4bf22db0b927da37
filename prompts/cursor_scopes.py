"""Scopes around the cursor: the construct a node or an unclosed brace makes, and its name."""

from __future__ import annotations

from tree_sitter import Node

from .cursor_facts import CLASS_LIKE, Scope, ScopeKind
from .cursor_nodes import _is_comment, _text
from .languages import LanguageSpec

_VALUE_STARTERS = frozenset(
    {"=", "(", ",", ":", "[", "?", "return", "&&", "||", "=>", "+", "-", "!", "<", ">", "*"}
)
"""Tokens after which a `{` opens a literal, not a block (JS `=>` is checked before this)."""


def _keyword(node: Node) -> str:
    for child in node.children[:3]:
        if not child.is_named and child.type.isalpha():
            return child.type
    return node.type.split("_", 1)[0]


def _declarator_name(declarator: Node | None) -> str:
    """Name at the end of a C/C++ declarator chain (`*f(int)` -> `f`)."""
    for _ in range(16):
        if declarator is None:
            return ""
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            return _text(declarator)
        declarator = inner
    return ""


def _binding_name(node: Node) -> str:
    """Name a closure or an anonymous class gets from what it is assigned to (`f = ...`)."""
    parent = node.parent
    if parent is None or parent.type in ("arguments", "argument_list"):
        return ""
    for field in ("name", "pattern", "left", "key", "declarator"):
        target = parent.child_by_field_name(field)
        if target is not None and target != node:
            return _text(target)
    return ""


def _scope_name(node: Node, kind: ScopeKind) -> str:
    if kind is ScopeKind.BLOCK:
        return _keyword(node)
    if kind is ScopeKind.IMPL:
        return _text(node.child_by_field_name("type"))
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    if kind is not ScopeKind.CLOSURE and node.child_by_field_name("declarator") is not None:
        return _declarator_name(node.child_by_field_name("declarator"))
    return _binding_name(node)


def _scope(node: Node, outer: list[Scope], spec: LanguageSpec) -> Scope | None:
    """The scope `node` makes, if any (`outer`: the scopes around it, outermost first)."""
    kind = spec.nodes.scopes.get(node.type)
    if node.type == "type_spec":  # Go: type T struct {...} / interface {...}
        shape = node.child_by_field_name("type")
        if shape is not None and shape.type == "struct_type":
            kind = ScopeKind.STRUCT
        elif shape is not None and shape.type == "interface_type":
            kind = ScopeKind.INTERFACE
    if kind is None or node.parent is None:
        return None
    if node.type.endswith("_specifier") and node.child_by_field_name("body") is None:
        return None  # C/C++: `struct S x;` names a type, it does not define one
    if kind is ScopeKind.CLOSURE and node.type in ("function_expression", "function"):
        if node.child_by_field_name("name") is not None:
            kind = ScopeKind.FUNCTION  # `function f() {` read as an expression while unfinished
    if kind is ScopeKind.FUNCTION and outer and outer[-1].kind in CLASS_LIKE:
        kind = ScopeKind.METHOD
    return Scope(kind, _scope_name(node, kind), node.start_point.row)


def _scopes_of(
    nodes: list[Node], spec: LanguageSpec, outer: list[Scope] | None = None
) -> list[Scope]:
    scopes = list(outer or [])
    for node in nodes:
        scope = _scope(node, scopes, spec)
        if scope is not None:
            scopes.append(scope)
    return scopes


def _error_header(
    brace: Node, outer: list[Scope], spec: LanguageSpec
) -> tuple[Scope | None, Node] | None:
    """What a `{` inside an ERROR node opens, from the tokens before it back to the previous
    `{`, `}` or `;`: (its scope or None for a plain block, the first header token), or None
    when it opens a literal."""
    tokens: list[Node] = []
    node: Node | None = brace
    while node is not None and len(tokens) < 32:
        sibling = node.prev_sibling
        if sibling is None and node.parent is not None and node.parent.is_error:
            node = node.parent  # the header may sit just before the ERROR node
            continue
        if sibling is None or sibling.type in ("{", "}", ";"):
            break
        if not _is_comment(sibling, spec):
            tokens.append(sibling)
        node = sibling
    tokens.reverse()
    first = tokens[0] if tokens else brace
    row = first.start_point.row
    for token in reversed(tokens):
        if not token.is_named or token.type not in spec.nodes.scopes:
            continue
        if (scope := _scope(token, outer, spec)) is not None:
            return scope, first  # e.g. Go: `func main()` parsed, its `{` in an ERROR after it
    for i, token in enumerate(tokens):
        kind = spec.nodes.keyword_scopes.get(token.type)
        if kind is None:
            continue
        if kind is ScopeKind.BLOCK:
            return Scope(kind, token.type, row), first
        if kind is ScopeKind.FUNCTION and outer and outer[-1].kind in CLASS_LIKE:
            kind = ScopeKind.METHOD
        name = next((_text(t) for t in tokens[i + 1 :] if t.type in spec.nodes.names), "")
        return Scope(kind, name, row), first
    for i, token in enumerate(tokens):
        if token.type == "function_declarator":
            kind = ScopeKind.FUNCTION
            name = _declarator_name(token)
        elif token.type in spec.nodes.parameters:
            kind = ScopeKind.FUNCTION
            name = next((_text(t) for t in reversed(tokens[:i]) if t.type in spec.nodes.names), "")
        else:
            continue
        if outer and outer[-1].kind in CLASS_LIKE:
            kind = ScopeKind.METHOD
        return Scope(kind, name, row), first
    if tokens and tokens[-1].type == "=>":
        return Scope(ScopeKind.CLOSURE, "", row), first
    if tokens and tokens[-1].type in _VALUE_STARTERS:
        return None
    return None, first
