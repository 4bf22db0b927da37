"""Cursor analysis: region, enclosing scopes and block at the cursor, and how much to complete.

`analyze_cursor(syntax, text, offset)` reads the tree (or, without one, the lines) around the
cursor and decides whether to ask for nothing, one line, or a block. The rules, in order:

1. NONE when the character right of the cursor is a word character: the user is editing a word
   (or stands right before one) and an insertion would run into it. This holds everywhere,
   plain text included.
2. In a comment or a string: SINGLE_LINE, whatever is right of the cursor (finishing a comment
   or a string on its line is useful; a block in there is not).
3. Text right of the cursor: SINGLE_LINE, except an empty block closed on this very line
   (`{|}`): MULTI_LINE, the body goes between the braces.
4. The line is blank: MULTI_LINE when the enclosing block is empty (comments and a Python
   docstring do not count as statements), or the last code before the cursor is the block's
   opener or an open bracket; otherwise SINGLE_LINE (a blank line in a block that already has
   code gets one statement: the cheap, common case; the next blank line asks again).
5. The line ends, at the cursor, with a block opener (`{`, or Python's `:` before a body):
   MULTI_LINE if the block is empty, NONE if it already has a body (only a trailing comment
   could go there).
6. The line ends with another open bracket (`(`, `[`, a literal's `{`): MULTI_LINE (the
   arguments or items may span lines; the clean-up cuts at the bracket's indentation).
7. Brace languages: the line ends with `;` or `}` that closes an error-free statement at
   statement level: NONE. (`}` closing an `if` might still take ` else`; we accept the miss.)
   After `)` the statement may go on (` + 1`, `.then(...)`, a missing `;`): SINGLE_LINE.
8. Otherwise (the line holds a statement being written): SINGLE_LINE.

Without a tree (plain text, a document too large to parse, a stale tree) rule 1 applies and then
the line rules of `decide_mode`. Python scopes follow indentation: on a blank or
comment-only line the enclosing blocks are those whose header is less indented than the cursor.
Brace-language blocks left open by the user (tree-sitter then yields ERROR nodes or a misplaced
MISSING `}`) are found by matching the brace tokens before the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .cursor_blocks import _brace_frames, _python_frames
from .cursor_facts import Facts, Region, Scope, ScopeKind
from .cursor_lines import _body_below, _indent, _line_facts, decide_mode
from .cursor_nodes import (
    _chain,
    _completes_statement,
    _last_code_leaf,
    _next_code_byte,
    _region,
    _row_indent,
)
from .prompt import Mode
from .syntax import SyntaxTree

__all__ = [
    "CursorContext",
    "Decision",
    "Region",
    "Scope",
    "ScopeKind",
    "analyze_cursor",
    "decide_mode",
]


class Decision(StrEnum):
    """How much text to ask the model for at the cursor."""

    NONE = "none"
    SINGLE_LINE = "single-line"
    MULTI_LINE = "multi-line"

    @property
    def mode(self) -> Mode | None:
        """The prompt `Mode` for this decision (None: do not complete)."""
        if self is Decision.SINGLE_LINE:
            return Mode.SINGLE_LINE
        if self is Decision.MULTI_LINE:
            return Mode.MULTI_LINE
        return None


@dataclass(frozen=True)
class CursorContext:
    """Facts about the cursor and the completion decision they lead to."""

    region: Region
    """Code, comment or string."""
    line_prefix: str
    """Text of the cursor's line left of the cursor."""
    line_suffix: str
    """Text of the cursor's line right of the cursor."""
    line_empty: bool
    """The cursor's line holds only whitespace."""
    mid_line: bool
    """Non-whitespace text is right of the cursor on its line."""
    scopes: tuple[Scope, ...]
    """Enclosing constructs, outermost first."""
    block_empty: bool
    """The innermost enclosing block (or the document) has no statement yet."""
    indent: str
    """Indentation of the cursor's line (its leading whitespace left of the cursor)."""
    block_indent: str
    """Indentation of the innermost enclosing block's header line ('' at top level)."""
    opens_block: bool
    """The last code token before the cursor opens a block or a bracket."""
    decision: Decision
    """None, one line, or a block."""
    reason: str
    """Why, in a few words (for logs and tests)."""


def analyze_cursor(syntax: SyntaxTree | None, text: str, offset: int) -> CursorContext:
    """Facts about the cursor at str `offset` of `text`, and the completion decision.

    `syntax` must describe `text` (a tree of another text is ignored: line rules apply).
    Never raises: offsets are clamped, and a failure in the tree analysis falls back to lines.
    """
    offset = max(0, min(offset, len(text)))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        offset -= 1
    line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    line_end = min(
        (i for i in (text.find("\n", offset), text.find("\r", offset)) if i >= 0), default=len(text)
    )
    line_prefix, line_suffix = text[line_start:offset], text[offset:line_end]
    line_empty = not line_prefix.strip() and not line_suffix.strip()
    mid_line = bool(line_suffix.strip())
    usable = (
        syntax is not None
        and syntax.root is not None
        and (syntax.text is text or syntax.text == text)
    )
    facts: Facts | None = None
    failed = ""
    if usable:
        assert syntax is not None
        try:
            facts = _tree_facts(syntax, offset, line_start, line_prefix, line_suffix)
        except Exception as exc:  # never let an odd tree break a completion
            failed = f"syntax analysis failed ({type(exc).__name__}); "
    if facts is not None:
        decision, reason = _decide(facts, line_prefix, line_suffix, line_empty, mid_line)
        if (
            decision is Decision.MULTI_LINE
            and line_empty
            and not facts.block_empty
            and _body_below(text, line_end, line_prefix)
        ):
            # the lines below, indented deeper, are a body waiting for its header: one line
            decision, reason = Decision.SINGLE_LINE, "blank line above a deeper-indented body"
    else:
        facts = _line_facts(text, line_start, line_end, line_prefix, line_suffix)
        decision, reason = _decide_by_lines(line_prefix, line_suffix)
        reason = failed + reason
    return CursorContext(
        region=facts.region,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        line_empty=line_empty,
        mid_line=mid_line,
        scopes=facts.scopes,
        block_empty=facts.block_empty,
        indent=_indent(line_prefix),
        block_indent=facts.block_indent,
        opens_block=facts.after_opener or facts.bracket_open,
        decision=decision,
        reason=reason,
    )


def _is_word(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _word_rule(line_prefix: str, line_suffix: str) -> tuple[Decision, str] | None:
    if line_suffix and _is_word(line_suffix[0]):
        if line_prefix and _is_word(line_prefix[-1]):
            return Decision.NONE, "inside a word"
        return Decision.NONE, "a word starts right of the cursor"
    return None


def _decide(
    f: Facts, line_prefix: str, line_suffix: str, line_empty: bool, mid_line: bool
) -> tuple[Decision, str]:
    """The rules of the module docstring, on facts from the tree."""
    if word := _word_rule(line_prefix, line_suffix):
        return word
    if f.region is Region.COMMENT:
        return Decision.SINGLE_LINE, "in a comment: finish the line"
    if f.region is Region.STRING:
        return Decision.SINGLE_LINE, "in a string: finish the line"
    if mid_line:
        if f.block_empty and f.closer_right:
            return Decision.MULTI_LINE, "empty block closed on this line: fill it"
        return Decision.SINGLE_LINE, "text right of the cursor"
    if line_empty:
        if f.block_empty:
            return Decision.MULTI_LINE, "empty block: fill the body"
        if f.after_opener:
            return Decision.MULTI_LINE, "blank line after a block opener"
        if f.bracket_open:
            return Decision.MULTI_LINE, "blank line after an open bracket"
        return Decision.SINGLE_LINE, "blank line in a block that has code"
    if f.after_opener:
        if f.block_empty:
            return Decision.MULTI_LINE, "block opener with an empty body"
        return Decision.NONE, "block opener; the block already has a body"
    if f.bracket_open:
        return Decision.MULTI_LINE, "open bracket at the end of the line"
    if f.complete:
        return Decision.NONE, "statement complete"
    return Decision.SINGLE_LINE, "the line holds a statement"


def _decide_by_lines(line_prefix: str, line_suffix: str) -> tuple[Decision, str]:
    """Without a tree: the word rule, then `decide_mode`."""
    if word := _word_rule(line_prefix, line_suffix):
        return word
    mode, _ = decide_mode(line_prefix, line_suffix)
    if mode is Mode.MULTI_LINE:
        return Decision.MULTI_LINE, "no syntax tree: line rules (blank line or opener)"
    return Decision.SINGLE_LINE, "no syntax tree: line rules"


def _tree_facts(
    syntax: SyntaxTree, offset: int, line_start: int, line_prefix: str, line_suffix: str
) -> Facts:
    root = syntax.root
    assert root is not None
    source = syntax.source
    spec = syntax.spec
    python = spec.indent_blocks
    b = syntax.byte_offset(offset)
    line_start_byte = syntax.byte_offset(line_start)
    chain = _chain(root, b, spec)
    region = _region(chain, root, line_prefix, spec)
    has_code_left = bool(line_prefix.strip())
    last = _last_code_leaf(root, source, b, spec)
    if last is not None and last.end_byte <= line_start_byte:
        last_on_line = None
    else:
        last_on_line = last
    if python:
        scopes, body = _python_frames(
            root, source, chain, last_on_line, line_start_byte, line_prefix, line_suffix, spec
        )
    else:
        scopes, body = _brace_frames(root, source, b, chain, last, spec)
    after_opener = (
        body.opener_end is not None and last is not None and last.end_byte == body.opener_end
    )
    next_code = _next_code_byte(source, b)
    closer_right = body.closer_start is not None and body.closer_start == next_code
    bracket = last_on_line if has_code_left else last
    bracket_open = (
        bracket is not None
        and not after_opener
        and bracket.type in ("(", "[", "{")
        and not bracket.is_missing
    )
    complete = (
        not python
        and has_code_left
        and last_on_line is not None
        and _completes_statement(root, last_on_line, spec)
    )
    block_indent = ""
    if body.header_row is not None:
        block_indent = _row_indent(source, body.header_row_start)
    return Facts(
        region=region,
        scopes=tuple(scopes),
        block_empty=body.empty,
        block_indent=block_indent,
        after_opener=after_opener,
        closer_right=closer_right,
        bracket_open=bracket_open,
        complete=complete,
    )
