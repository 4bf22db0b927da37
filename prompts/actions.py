"""Code actions: where each applies (tree-sitter), what the model is asked, where its text goes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tree_sitter import Node

from .languages import LanguageSpec
from .prompt import Mode
from .soundness import error_count
from .syntax import SyntaxTree

STUB_BODY = re.compile(
    r"^(?:pass|\.\.\.|raise\s+NotImplementedError(?:\(.*\))?|return|"
    r"(?:#|//)\s*TODO\b.*|(?:\"\"\"|''')[\s\S]*?(?:\"\"\"|'''))$",
    re.IGNORECASE,
)
"""A body line that holds nothing yet: pass, ..., raise NotImplementedError, a TODO comment."""
MAX_DIAGNOSTIC_LINES = 12
"""Longest diagnostic range (in lines) a fix rewrites."""


class ActionKind(StrEnum):
    """The code actions the server offers."""

    IMPLEMENT = "implement"
    DOCSTRING = "docstring"
    FIX = "fix"
    REWRITE = "rewrite"


@dataclass(frozen=True)
class Diagnostic:
    """A problem another server reported: its text range (str offsets) and message."""

    start: int
    end: int
    message: str


@dataclass(frozen=True)
class Action:
    """One offered action: what is replaced, and the text the model continues to write it.

    The model is asked to complete `prompt_text` at `cursor` (with `mode`, `stop` and, for
    chat models, `instruction`); its cleaned completion `c` then replaces
    `text[start:end]` as `before + c + after`."""

    kind: ActionKind
    title: str
    start: int
    end: int
    prompt_text: str
    cursor: int
    mode: Mode
    instruction: str
    before: str = ""
    after: str = ""
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None

    def new_text(self, completion: str) -> str:
        """The text that replaces `text[start:end]`."""
        return self.before + completion + self.after


def find_actions(
    tree: SyntaxTree | None,
    text: str,
    start: int,
    end: int,
    diagnostics: tuple[Diagnostic, ...] = (),
    *,
    chat: bool = False,
    instruction: str = "",
) -> list[Action]:
    """The actions that apply at the range `start`..`end` (str offsets) of `text`.

    `chat`: the model follows instructions (a rewrite is offered only then); `instruction`:
    the user's instruction for a rewrite ('' leaves the rewrite out)."""
    out: list[Action] = []
    if tree is not None and tree.root is not None and tree.text == text:
        definition = _definition_at(tree, start)
        if definition is not None:
            implement = _implement(tree, definition, text)
            if implement is not None:
                out.append(implement)
            doc = _docstring(tree, definition, text)
            if doc is not None:
                out.append(doc)
    comment = (tree.spec.line_comment if tree is not None else "") or "#"
    for diagnostic in diagnostics:
        fix = _fix(text, diagnostic, comment)
        if fix is not None:
            out.append(fix)
    if chat and instruction.strip() and end > start:
        out.append(_rewrite(text, start, end, instruction.strip()))
    return out


def adds_no_error(language: str, text: str, action: Action, completion: str) -> bool:
    """The action's edit, applied in place, leaves no more tree-sitter errors than before."""
    if not language:
        return True
    edited = text[: action.start] + action.new_text(completion) + text[action.end :]
    return error_count(language, edited) <= error_count(language, text)


# -- finding the definition ---------------------------------------------------------------------
def _definition_at(tree: SyntaxTree, offset: int) -> Node | None:
    """The innermost function or class around `offset`."""
    spec = tree.spec
    kinds = spec.nodes.functions | _class_nodes(spec)
    for at in (offset, offset - 1):  # at a line's end the cursor touches the next node
        node = tree.node_at(max(0, at))
        while node is not None:
            if node.type in kinds and node.child_by_field_name("body") is not None:
                return node
            node = node.parent
    return None


def _class_nodes(spec: LanguageSpec) -> frozenset[str]:
    return frozenset(t for t, kind in spec.nodes.scopes.items() if kind in ("class", "struct"))


def _name(node: Node) -> str:
    name = node.child_by_field_name("name")
    return name.text.decode("utf-8", "replace") if name is not None and name.text else "this"


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _indent_at(text: str, offset: int) -> str:
    line = text[_line_start(text, offset) : offset]
    return line[: len(line) - len(line.lstrip(" \t"))]


# -- implement ----------------------------------------------------------------------------------
def _implement(tree: SyntaxTree, node: Node, text: str) -> Action | None:
    """An empty or stub function body: the model writes it."""
    if node.type not in tree.spec.nodes.functions:
        return None
    body = node.child_by_field_name("body")
    assert body is not None
    start, end = tree.str_offset(body.start_byte), tree.str_offset(body.end_byte)
    inner = text[start:end]
    braces = inner.startswith("{") and inner.endswith("}")
    if braces:
        start, end = start + 1, end - 1
        inner = text[start:end]
    lines = [ln.strip() for ln in inner.strip().splitlines() if ln.strip()]
    if len(lines) > 2 or not all(STUB_BODY.match(ln) for ln in lines):
        return None
    name = _name(node)
    title = f"Implement {name}"
    header_indent = _indent_at(text, tree.str_offset(node.start_byte))
    if braces:
        indent = header_indent + _unit(text)
        prompt_text = text[:start] + "\n" + indent + "\n" + header_indent + text[end:]
        cursor = start + 1 + len(indent)
        return Action(
            ActionKind.IMPLEMENT,
            title,
            start,
            end,
            prompt_text,
            cursor,
            Mode.MULTI_LINE,
            f"Implement the body of {name}.",
            before="\n" + indent,
            after="\n" + header_indent,
        )
    # an indentation body (Python): the block starts at its first statement
    prompt_text = text[:start] + text[end:]
    return Action(
        ActionKind.IMPLEMENT,
        title,
        start,
        end,
        prompt_text,
        start,
        Mode.MULTI_LINE,
        f"Implement the body of {name}.",
    )


def _unit(text: str) -> str:
    """The file's indentation unit (a tab or its most common run of spaces)."""
    from .postprocess import indent_unit

    return indent_unit(text) or "    "


# -- docstring ----------------------------------------------------------------------------------
def _docstring(tree: SyntaxTree, node: Node, text: str) -> Action | None:
    """A function or class without documentation: the model writes it."""
    spec = tree.spec
    body = node.child_by_field_name("body")
    assert body is not None
    name = _name(node)
    if spec.name == "python":
        first = body.named_children[0] if body.named_children else None
        if first is not None and first.type == "expression_statement":
            child = first.named_children[0] if first.named_children else None
            if child is not None and child.type == "string":
                return None  # it has one
        at = tree.str_offset(body.start_byte)
        indent = _indent_at(text, at)
        prompt_text = text[:at] + '"""' + text[at:]
        return Action(
            ActionKind.DOCSTRING,
            f"Write a docstring for {name}",
            at,
            at,
            prompt_text,
            at + 3,
            Mode.SINGLE_LINE,
            f"Write a one-line docstring for {name}.",
            before='"""',
            after='"""\n' + indent,
            stop=('"""',),
            max_tokens=48,
        )
    comment = spec.line_comment
    if not comment:
        return None
    top = node
    while top.parent is not None and top.parent.type in spec.nodes.wrappers:
        top = top.parent
    line = _line_start(text, tree.str_offset(top.start_byte))
    previous = text[_line_start(text, max(0, line - 1)) : max(0, line - 1)].strip()
    if previous.startswith((comment, "/*", "*")):
        return None  # it has one
    indent = _indent_at(text, tree.str_offset(top.start_byte))
    prompt_text = text[:line] + indent + comment + " " + text[line:]
    cursor = line + len(indent) + len(comment) + 1
    return Action(
        ActionKind.DOCSTRING,
        f"Write a doc comment for {name}",
        line,
        line,
        prompt_text,
        cursor,
        Mode.SINGLE_LINE,
        f"Write a one-line doc comment for {name}.",
        before=indent + comment + " ",
        after="\n",
        max_tokens=48,
    )


# -- fix ------------------------------------------------------------------------------------------
def _fix(text: str, diagnostic: Diagnostic, comment: str) -> Action | None:
    """Rewrite the diagnostic's lines; the problem is told to the model (a comment above them
    for code models, the instruction for chat models)."""
    start = _line_start(text, max(0, min(diagnostic.start, len(text))))
    stop = max(diagnostic.start, min(diagnostic.end, len(text)))
    end = text.find("\n", stop)
    end = len(text) if end < 0 else end
    if text[start:end].count("\n") >= MAX_DIAGNOSTIC_LINES or not text[start:end].strip():
        return None
    message = " ".join(diagnostic.message.split())[:300]
    indent = _indent_at(text, start + len(text[start:end]) - len(text[start:end].lstrip()))
    single = "\n" not in text[start:end]
    note = f"{indent}{comment} Fixed: {message}\n"
    prompt_text = text[:start] + note + indent + text[end:]
    cursor = start + len(note) + len(indent)
    return Action(
        ActionKind.FIX,
        f"Fix: {message[:60]}",
        start,
        end,
        prompt_text,
        cursor,
        Mode.SINGLE_LINE if single else Mode.MULTI_LINE,
        f"Fix this problem: {message}. The code there was:\n{text[start:end]}",
        before=indent,
    )


# -- rewrite --------------------------------------------------------------------------------------
def _rewrite(text: str, start: int, end: int, instruction: str) -> Action:
    """Replace the selection as the user instructed (chat models only)."""
    prompt_text = text[:start] + text[end:]
    return Action(
        ActionKind.REWRITE,
        f"Rewrite: {instruction[:60]}",
        start,
        end,
        prompt_text,
        start,
        Mode.MULTI_LINE,
        f"Rewrite the code that was here as instructed: {instruction}. "
        f"The code that was here:\n{text[start:end]}",
    )
