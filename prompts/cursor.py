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

from tree_sitter import Node

from .prompt import Mode
from .syntax import SyntaxTree


class Region(StrEnum):
    """What the cursor stands in."""

    CODE = "code"
    COMMENT = "comment"
    STRING = "string"


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


class ScopeKind(StrEnum):
    """Kinds of enclosing constructs."""

    CLASS = "class"
    STRUCT = "struct"
    ENUM = "enum"
    IMPL = "impl"
    INTERFACE = "interface"
    NAMESPACE = "namespace"
    FUNCTION = "function"
    METHOD = "method"
    CLOSURE = "closure"
    BLOCK = "block"


@dataclass(frozen=True)
class Scope:
    """A construct enclosing the cursor."""

    kind: ScopeKind
    """What it is (a function directly inside a class-like scope is a method)."""
    name: str
    """Its name; for a block the keyword (`if`, `for`, ...); '' when it has none."""
    start_line: int
    """0-based line where it starts (lines counted by '\\n')."""


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


# -- node tables ---------------------------------------------------------------------------------


def _words(words: str) -> frozenset[str]:
    return frozenset(words.split())


_SCOPE_KINDS: dict[str, ScopeKind] = {
    name: kind
    for kind, names in (
        (
            ScopeKind.CLASS,
            "class_definition class_declaration abstract_class_declaration class class_specifier"
            " record_declaration",
        ),
        (ScopeKind.STRUCT, "struct_specifier union_specifier struct_item union_item"),
        (ScopeKind.ENUM, "enum_item enum_declaration enum_specifier"),
        (ScopeKind.IMPL, "impl_item"),
        (ScopeKind.INTERFACE, "trait_item interface_declaration annotation_type_declaration"),
        (ScopeKind.NAMESPACE, "mod_item namespace_definition internal_module module"),
        (
            ScopeKind.FUNCTION,
            "function_definition function_declaration generator_function_declaration function_item",
        ),
        (
            ScopeKind.METHOD,
            "method_definition method_declaration constructor_declaration"
            " compact_constructor_declaration",
        ),
        (
            ScopeKind.CLOSURE,
            "function_expression function generator_function arrow_function func_literal"
            " closure_expression lambda lambda_expression",
        ),
        (
            ScopeKind.BLOCK,
            "if_statement for_statement for_in_statement enhanced_for_statement for_range_loop"
            " while_statement do_statement try_statement try_with_resources_statement"
            " with_statement match_statement switch_statement switch_expression"
            " synchronized_statement expression_switch_statement type_switch_statement"
            " select_statement if_expression for_expression while_expression loop_expression"
            " match_expression unsafe_block async_block",
        ),
    )
    for name in names.split()
}
"""Node types that make a scope (one table for all grammars: type names agree in meaning)."""
_CLASS_LIKE = frozenset(
    {ScopeKind.CLASS, ScopeKind.STRUCT, ScopeKind.ENUM, ScopeKind.IMPL, ScopeKind.INTERFACE}
)
_CASE_TYPES = _words(
    "expression_case type_case default_case communication_case switch_case switch_default"
    " switch_block_statement_group case_statement"
)
"""Bodies opened by a `:` (switch cases), whose header is their own first line."""
_SELF_HEADED = _CASE_TYPES | _words(
    "expression_switch_statement type_switch_statement select_statement interface_type"
)
"""Bodies that are their own header (Go: the braces are direct children of the statement)."""
_BODY_TYPES = _SELF_HEADED | _words(
    "block statement_block compound_statement class_body declaration_list"
    " field_declaration_list interface_body enum_body enum_variant_list enumerator_list"
    " match_block switch_body switch_block constructor_body annotation_type_body module_body"
)
"""Nodes holding a block's statements or members (Python `block`, a `{...}` body, a case)."""
_STRING_TYPES = _words(
    "string string_literal string_content string_fragment template_string raw_string_literal"
    " raw_string_literal_content interpreted_string_literal interpreted_string_literal_content"
    " char_literal character_literal rune_literal system_lib_string multiline_string_fragment"
    " text_block"
)
_INTERPOLATION_TYPES = _words("interpolation template_substitution string_interpolation")
_CLOSERS = frozenset({")", "]", "}", ";", '"', "'", "`", "string_end", '"""', "'''"})
"""Tokens that close the node they end (a cursor right after them is outside it)."""
_NAME_TYPES = _words("identifier type_identifier field_identifier property_identifier")
_PARAMETER_TYPES = _words("parameters formal_parameters parameter_list")
_KEYWORD_KINDS: dict[str, ScopeKind] = {
    name: kind
    for kind, names in (
        (ScopeKind.FUNCTION, "fn func function def"),
        (ScopeKind.CLASS, "class"),
        (ScopeKind.STRUCT, "struct union"),
        (ScopeKind.ENUM, "enum"),
        (ScopeKind.IMPL, "impl"),
        (ScopeKind.INTERFACE, "trait interface"),
        (ScopeKind.NAMESPACE, "mod namespace"),
        (ScopeKind.BLOCK, "if else for while loop match switch select try catch finally do unsafe"),
    )
    for name in names.split()
}
"""Keywords that name the construct owning a `{` that tree-sitter left inside an ERROR node."""
_VALUE_STARTERS = frozenset(
    {"=", "(", ",", ":", "[", "?", "return", "&&", "||", "=>", "+", "-", "!", "<", ">", "*"}
)
"""Tokens after which a `{` opens a literal, not a block (JS `=>` is checked before this)."""
_BLOCK_LEADS = frozenset({")", "else", "do", "try", "finally", "=>"})
"""Tokens after which a `{` opens a block."""
_WHITESPACE = b" \t\r\n\f\v"
_INDENT_LANGUAGES = frozenset({"python"})
_QUOTES: dict[str, tuple[str, ...]] = {
    "python": ('"""', "'''", '"', "'"),
    "javascript": ('"', "'", "`"),
    "typescript": ('"', "'", "`"),
    "typescriptreact": ('"', "'", "`"),
    "go": ('"', "`", "'"),
    "rust": ('"',),
}
_LINE_OPENERS = (":", "{", "(", "[")
_MAX_STEPS = 2000
"""Bound on tree walks and line scans, so odd inputs stay cheap."""


@dataclass(frozen=True)
class _Facts:
    """What the tree (or the lines) say about the cursor."""

    region: Region = Region.CODE
    scopes: tuple[Scope, ...] = ()
    block_empty: bool = False
    block_indent: str = ""
    after_opener: bool = False
    """The last code token before the cursor opens the innermost block."""
    closer_right: bool = False
    """The innermost block's closing brace is the first text right of the cursor."""
    bracket_open: bool = False
    """The line ends, at the cursor, with an opening bracket that is not a block opener."""
    complete: bool = False
    """The line ends, at the cursor, with `;` or `}` closing an error-free statement."""


# -- public entry --------------------------------------------------------------------------------


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
    facts: _Facts | None = None
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


# -- the decision --------------------------------------------------------------------------------


def _is_word(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _word_rule(line_prefix: str, line_suffix: str) -> tuple[Decision, str] | None:
    if line_suffix and _is_word(line_suffix[0]):
        if line_prefix and _is_word(line_prefix[-1]):
            return Decision.NONE, "inside a word"
        return Decision.NONE, "a word starts right of the cursor"
    return None


def _decide(
    f: _Facts, line_prefix: str, line_suffix: str, line_empty: bool, mid_line: bool
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


# -- facts from lines (no tree) ------------------------------------------------------------------


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str) -> int:
    return len(indent.expandtabs(8))


def _line_facts(
    text: str, line_start: int, line_end: int, line_prefix: str, line_suffix: str
) -> _Facts:
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
    return _Facts(block_empty=empty, block_indent=block_indent, after_opener=opens)


def _body_below(text: str, line_end: int, line_prefix: str) -> bool:
    """The next non-blank line is indented deeper than the cursor's (blank) line."""
    following = _neighbour_line(text, line_end, +1)
    return following is not None and _width(_indent(following)) > _width(line_prefix)


def _neighbour_line(text: str, pos: int, step: int) -> str | None:
    """The nearest non-blank line before `pos` (step -1, pos = a line start) or after it (+1)."""
    for _ in range(_MAX_STEPS):
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
    for _ in range(_MAX_STEPS):
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


# -- facts from the tree -------------------------------------------------------------------------


def _tree_facts(
    syntax: SyntaxTree, offset: int, line_start: int, line_prefix: str, line_suffix: str
) -> _Facts:
    root = syntax.root
    assert root is not None
    source = syntax.source
    language = syntax.spec.name
    python = language in _INDENT_LANGUAGES
    b = syntax.byte_offset(offset)
    line_start_byte = syntax.byte_offset(line_start)
    chain = _chain(root, b, python)
    region = _region(chain, root, line_prefix, language)
    has_code_left = bool(line_prefix.strip())
    last = _last_code_leaf(root, source, b)
    if last is not None and last.end_byte <= line_start_byte:
        last_on_line = None
    else:
        last_on_line = last
    if python:
        scopes, body = _python_frames(
            root, source, chain, last_on_line, line_start_byte, line_prefix, line_suffix
        )
    else:
        scopes, body = _brace_frames(root, source, b, chain, last)
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
        and _completes_statement(root, last_on_line)
    )
    block_indent = ""
    if body.header_row is not None:
        block_indent = _row_indent(source, body.header_row_start)
    return _Facts(
        region=region,
        scopes=tuple(scopes),
        block_empty=body.empty,
        block_indent=block_indent,
        after_opener=after_opener,
        closer_right=closer_right,
        bracket_open=bracket_open,
        complete=complete,
    )


@dataclass(frozen=True)
class _Body:
    """The innermost block around the cursor."""

    empty: bool
    opener_end: int | None = None
    """Byte after the token that opens it (`{`, or Python's `:`)."""
    closer_start: int | None = None
    """Byte of its closing `}` (None when it has none yet)."""
    header_row: int | None = None
    """Row of its header line (None at top level)."""
    header_row_start: int = 0
    """Byte where that row starts."""


def _is_comment(node: Node) -> bool:
    return "comment" in node.type


def _closed(node: Node, python: bool) -> bool:
    """True when `node` ends with a token that closes it, so a cursor at its end is outside."""
    n = node
    for _ in range(_MAX_STEPS):
        if _is_comment(n):
            text = n.text or b""
            return text.endswith((b"*/", b"\n"))
        count = n.child_count
        if count == 0:
            if n.is_missing:
                return False
            return n.type in _CLOSERS or n.type in _STRING_TYPES
        if python and n.type == "block":
            return False
        last = n.child(count - 1)
        if last is None:
            return False
        n = last
    return False


def _chain(root: Node, b: int, python: bool) -> list[Node]:
    """Nodes enclosing byte `b`, root first: they start before `b` and end after it (or at `b`
    without a closing token, as an unfinished statement or a line comment does)."""
    chain = [root]
    if b <= 0:
        return chain
    # A TreeCursor: Node.first_child_for_byte crashes (tree-sitter 0.26.1) when no child matches.
    cursor = root.walk()
    for _ in range(_MAX_STEPS):
        if cursor.goto_first_child_for_byte(b - 1) is None:
            break
        child = cursor.node
        if child is None or child.start_byte >= b or child.end_byte < b:
            break
        if child.end_byte == b and _closed(child, python):
            break
        chain.append(child)
    return chain


def _ancestors(node: Node) -> list[Node]:
    """`node` and its ancestors, root first."""
    out = [node]
    parent = node.parent
    while parent is not None and len(out) < _MAX_STEPS:
        out.append(parent)
        parent = parent.parent
    out.reverse()
    return out


def _region(chain: list[Node], root: Node, line_prefix: str, language: str) -> Region:
    for node in reversed(chain):
        if node.type in _INTERPOLATION_TYPES:
            return Region.CODE
        if _is_comment(node):
            return Region.COMMENT
        if node.type in _STRING_TYPES:
            return Region.STRING
    if root.has_error and _open_quote(line_prefix, language):
        return Region.STRING
    return Region.CODE


def _open_quote(line_prefix: str, language: str) -> bool:
    """A string opened on this line is still open at its end (for unterminated strings, which
    tree-sitter turns into ERROR nodes)."""
    quotes = _QUOTES.get(language, ('"', "'"))
    comment = "#" if language == "python" else "//"
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


def _last_code_leaf(root: Node, source: bytes, b: int) -> Node | None:
    """The last token ending at or before byte `b`, skipping whitespace and comments."""
    p = b
    for _ in range(64):
        p = _skip_ws_back(source, p)
        if p <= 0:
            return None
        leaf = root.descendant_for_byte_range(p - 1, p)
        if leaf is None:
            return None
        comment = next((n for n in _up(leaf, 4) if _is_comment(n)), None)
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


def _completes_statement(root: Node, last: Node) -> bool:
    """`last` is a `;` or `}` ending an error-free statement that sits at statement level."""
    if last.type not in (";", "}") or last.is_missing:
        return False
    node = last
    for _ in range(_MAX_STEPS):
        parent = node.parent
        if parent is None or parent.end_byte != last.end_byte or parent == root:
            break
        node = parent
    parent = node.parent
    at_statement_level = parent is not None and (parent == root or parent.type in _BODY_TYPES)
    return at_statement_level and node != last and not node.has_error


# -- scopes --------------------------------------------------------------------------------------


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace").split("\n", 1)[0].strip()[:80]


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


def _scope(node: Node, outer: list[Scope]) -> Scope | None:
    """The scope `node` makes, if any (`outer`: the scopes around it, outermost first)."""
    kind = _SCOPE_KINDS.get(node.type)
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
    if kind is ScopeKind.FUNCTION and outer and outer[-1].kind in _CLASS_LIKE:
        kind = ScopeKind.METHOD
    return Scope(kind, _scope_name(node, kind), node.start_point.row)


def _scopes_of(nodes: list[Node], outer: list[Scope] | None = None) -> list[Scope]:
    scopes = list(outer or [])
    for node in nodes:
        scope = _scope(node, scopes)
        if scope is not None:
            scopes.append(scope)
    return scopes


# -- bodies --------------------------------------------------------------------------------------


def _brace(body: Node, kind: str) -> Node | None:
    """The body's own `{` (kind "{") or `}` (kind "}") token."""
    count = body.child_count
    indexes = range(count) if kind == "{" else range(count - 1, -1, -1)
    for i in indexes:
        child = body.child(i)
        if child is not None and child.type == kind and not child.is_missing:
            return child
    return None


def _sibling(node: Node, step: int) -> Node | None:
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
            while 0 <= j < len(children) and _is_comment(children[j]):
                j += step
            return children[j] if 0 <= j < len(children) else None
    return None


def _python_colon(block: Node) -> Node | None:
    sibling = _sibling(block, -1)
    return sibling if sibling is not None and sibling.type == ":" else None


def _block_after_colon(colon: Node) -> Node | None:
    """The Python block a `:` opens (None for a lambda's, a slice's or a dict's colon)."""
    if colon.type != ":":
        return None
    sibling = _sibling(colon, 1)
    return sibling if sibling is not None and sibling.type == "block" else None


def _statements(body: Node, after: int) -> bool:
    """The body holds a statement (not a comment, a docstring or a MISSING token) after `after`."""
    stack = [body]
    steps = 0
    while stack and steps < _MAX_STEPS:
        node = stack.pop()
        for child in node.named_children:
            steps += 1
            if child.end_byte <= after or _is_comment(child) or child.is_missing:
                continue
            if child.type == "statement_list":  # Go wraps a block's statements
                stack.append(child)
                continue
            if child.type == "expression_statement" and all(
                c.type in ("string", "concatenated_string") or _is_comment(c)
                for c in child.named_children
            ):
                continue  # a docstring
            return True
    return False


def _header(body: Node) -> Node:
    """The node whose first line is the body's header line."""
    parent = body.parent
    if body.type in _SELF_HEADED or parent is None or parent.type in _BODY_TYPES:
        return body
    if parent.parent is None:  # a bare block at top level
        return body
    return parent


def _real_body(source: bytes, body: Node) -> _Body:
    """A body node of the tree that holds the cursor."""
    opener_end: int | None = None
    if body.type == "block" and (colon := _python_colon(body)) is not None:
        opener_end = colon.end_byte
    elif body.type in _CASE_TYPES:
        colon = next((c for c in body.children if c.type == ":"), None)
        opener_end = colon.end_byte if colon is not None else None
    else:
        brace = _brace(body, "{")
        opener_end = brace.end_byte if brace is not None else None
    closer = _brace(body, "}")
    header = _header(body)
    start = opener_end if opener_end is not None else body.start_byte
    return _Body(
        empty=not _statements(body, start),
        opener_end=opener_end,
        closer_start=closer.start_byte if closer is not None else None,
        header_row=header.start_point.row,
        header_row_start=_row_start(source, header.start_byte),
    )


def _root_body(root: Node) -> _Body:
    return _Body(empty=not _statements(root, -1))


def _python_frames(
    root: Node,
    source: bytes,
    chain: list[Node],
    last_on_line: Node | None,
    line_start_byte: int,
    line_prefix: str,
    line_suffix: str,
) -> tuple[list[Scope], _Body]:
    """Scopes and block for Python: the tree where the line has code, else indentation."""
    code_line = (line_prefix + line_suffix).strip()
    if code_line and not code_line.startswith("#"):
        block = _block_after_colon(last_on_line) if last_on_line is not None else None
        if block is not None and last_on_line is not None and last_on_line.parent is not None:
            nodes = [*_ancestors(last_on_line.parent), block]
        else:
            nodes = chain
    else:
        last = _last_code_leaf(root, source, line_start_byte)
        if last is None:
            nodes = [root]
        elif (block := _block_after_colon(last)) is not None and last.parent is not None:
            nodes = [*_ancestors(last.parent), block]
        else:
            width = _width(_indent(line_prefix))
            nodes = [root]
            candidate = _ancestors(last)
            for i, node in enumerate(candidate):
                if node.type != "block":
                    continue
                header = _header(node)
                indent = _row_indent(source, _row_start(source, header.start_byte))
                if _width(indent) >= width:
                    break
                nodes = candidate[: i + 1]
    body_node = next((n for n in reversed(nodes) if n.type == "block"), None)
    body = _real_body(source, body_node) if body_node is not None else _root_body(root)
    return _scopes_of(nodes), body


def _brace_frames(
    root: Node, source: bytes, b: int, chain: list[Node], last: Node | None
) -> tuple[list[Scope], _Body]:
    """Scopes and block for brace languages: the tree, plus braces left open before `b`."""
    body_index = 0
    for i, node in enumerate(chain):
        if node.type in _BODY_TYPES:
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
        scopes = _scopes_of(chain)
        case = last.parent if last is not None and last.type == ":" else None
        if case is not None and case.type in _CASE_TYPES and case.start_byte >= lo:
            # `case 1:` with nothing after it yet ends at its colon, before the cursor
            return scopes, _real_body(source, case)
        body = _real_body(source, container) if body_index else _root_body(root)
        return scopes, body
    scopes = _scopes_of(chain[: body_index + 1])
    body = _real_body(source, container) if body_index else _root_body(root)
    for brace in frames:
        owner = _brace_owner(root, source, brace, scopes)
        if owner is None:
            continue  # a literal's brace
        scope, first = owner
        if scope is not None:
            scopes.append(scope)
        body = _Body(
            empty=_nothing_between(last, brace),
            opener_end=brace.end_byte,
            header_row=first.start_point.row,
            header_row_start=_row_start(source, first.start_byte),
        )
    return scopes, body


def _brace_owner(
    root: Node, source: bytes, brace: Node, outer: list[Scope]
) -> tuple[Scope | None, Node] | None:
    """What an unclosed `{` opens: (its scope or None for a plain block, the node starting its
    header line), or None when it opens a literal."""
    parent = brace.parent
    if parent is None:
        return None
    if parent.type in _BODY_TYPES:  # a body whose `}` tree-sitter placed (MISSING) after its `{`
        header = _header(parent)
        return (_scope(header, outer) if header != parent else None), header
    if parent.is_error:
        return _error_header(brace, outer)
    last_child = parent.child(parent.child_count - 1)
    if last_child is None or not last_child.is_missing:
        return None  # a literal, closed after the cursor
    before = _last_code_leaf(root, source, brace.start_byte)
    if before is None or before.type not in _BLOCK_LEADS:
        return None
    # JS `if (x) {` left open reads as `if (x) ({...})`: the `{` is the statement's block
    for node in _up(parent, 4)[1:]:
        if node.type in _SCOPE_KINDS:
            return _scope(node, outer), node
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
    while pending and steps < 20 * _MAX_STEPS:
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


def _error_header(brace: Node, outer: list[Scope]) -> tuple[Scope | None, Node] | None:
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
        if not _is_comment(sibling):
            tokens.append(sibling)
        node = sibling
    tokens.reverse()
    first = tokens[0] if tokens else brace
    row = first.start_point.row
    for token in reversed(tokens):
        if not token.is_named or token.type not in _SCOPE_KINDS:
            continue
        if (scope := _scope(token, outer)) is not None:
            return scope, first  # e.g. Go: `func main()` parsed, its `{` in an ERROR after it
    for i, token in enumerate(tokens):
        kind = _KEYWORD_KINDS.get(token.type)
        if kind is None:
            continue
        if kind is ScopeKind.BLOCK:
            return Scope(kind, token.type, row), first
        if kind is ScopeKind.FUNCTION and outer and outer[-1].kind in _CLASS_LIKE:
            kind = ScopeKind.METHOD
        name = next((_text(t) for t in tokens[i + 1 :] if t.type in _NAME_TYPES), "")
        return Scope(kind, name, row), first
    for i, token in enumerate(tokens):
        if token.type == "function_declarator":
            kind = ScopeKind.FUNCTION
            name = _declarator_name(token)
        elif token.type in _PARAMETER_TYPES:
            kind = ScopeKind.FUNCTION
            name = next((_text(t) for t in reversed(tokens[:i]) if t.type in _NAME_TYPES), "")
        else:
            continue
        if outer and outer[-1].kind in _CLASS_LIKE:
            kind = ScopeKind.METHOD
        return Scope(kind, name, row), first
    if tokens and tokens[-1].type == "=>":
        return Scope(ScopeKind.CLOSURE, "", row), first
    if tokens and tokens[-1].type in _VALUE_STARTERS:
        return None
    return None, first


_LINE_OPENERS = (":", "{", "(", "[")


def decide_mode(line_prefix: str, line_suffix: str) -> tuple[Mode, bool]:
    """Line rules without a tree: single line when text is right of the cursor or the line
    holds a statement, else multi-line; also whether the line ends with a block opener."""
    opens = line_prefix.rstrip().endswith(_LINE_OPENERS)
    if line_suffix.strip():
        return Mode.SINGLE_LINE, opens
    if not line_prefix.strip() or opens:
        return Mode.MULTI_LINE, opens
    return Mode.SINGLE_LINE, opens
