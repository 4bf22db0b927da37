"""Cross-file context: definitions of names used at the cursor, similar snippets of open files."""

from __future__ import annotations

import builtins
import heapq
import keyword
import math
import re
import sys
import textwrap
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, TypeVar

from tree_sitter import Node, Query, QueryCursor

from .languages import LanguageSpec, language_for
from .secrets import is_secret_path, redact
from .syntax import SyntaxTree

Kind = Literal["similar", "definition"]
CountTokens = Callable[[str], int]
T = TypeVar("T")

WINDOW_LINES = 20
"""Lines in one window of another document (the unit of a similar snippet)."""
WINDOW_STRIDE = 10
"""Lines between the starts of two windows (windows overlap by half)."""
QUERY_LINES_BEFORE = 20
"""Lines before the cursor's line in the similarity query."""
QUERY_LINES_AFTER = 10
"""Lines after the cursor's line in the similarity query."""
MIN_SIMILARITY = 0.1
"""Jaccard similarity below which a window is not worth its tokens."""
MAX_SNIPPETS = 3
"""Similar snippets in one prompt, at most."""
MIN_WINDOW_TOKENS = 3
"""Windows with fewer distinct identifiers (blank lines, braces) are never candidates."""
NAME_LINES_BEFORE = 20
"""Lines before the cursor's line searched for names to define."""
NAME_LINES_AFTER = 5
"""Lines after the cursor's line searched for names to define."""
MAX_NAMES = 24
"""Names near the cursor looked up, at most (nearest first)."""
MAX_DEFINITIONS_PER_NAME = 2
"""Definitions shown for one name (`get`, `new` are defined everywhere)."""
MAX_DEFINITION_LINES = 30
"""A definition longer than this is shown as an outline or signature with its body elided."""
MAX_LEADING_LINES = 12
"""Comment and attribute lines kept above a definition, at most."""
DEFINITION_SHARE = 2 / 3
"""Share of the context budget definitions may take; similar snippets get the rest."""
MAX_INDEXED_DOCUMENTS = 32
"""Documents whose windows and definitions `SnippetIndex` keeps (least recently used dropped)."""
MAX_INDEXED_CHARS = 1_000_000
"""Documents longer than this are not used as context (indexing them costs too much)."""
MAX_ABSENT_NAMES = 4096
"""Names remembered per document as not mentioned in it (cleared when full)."""

# --- keywords and builtins: never looked up, never counted as shared identifiers ---------------

_JS = (
    "break case catch class const continue debugger default delete do else export extends finally"
    " for function if import in instanceof let new return super switch this throw try typeof var"
    " void while with yield async await of static get set null undefined true false NaN Infinity"
    " console window document globalThis require module exports Object Array String Number"
    " Boolean Symbol BigInt Math JSON Date RegExp Error TypeError RangeError Promise Map Set"
    " WeakMap WeakSet parseInt parseFloat isNaN setTimeout clearTimeout setInterval fetch"
)
_TS = (
    " type interface enum implements namespace declare abstract readonly private protected public"
    " as is keyof infer never unknown any number string boolean object satisfies Record Partial"
    " Required Readonly Pick Omit Exclude Extract ReturnType Parameters Awaited"
)
_C = (
    "auto break case char const continue default do double else enum extern float for goto if"
    " inline int long register restrict return short signed sizeof static struct switch typedef"
    " union unsigned void volatile while bool true false NULL size_t ssize_t uint8_t uint16_t"
    " uint32_t uint64_t int8_t int16_t int32_t int64_t printf fprintf sprintf snprintf malloc"
    " calloc realloc free memcpy memset memmove strlen strcmp strncmp strcpy assert exit defined"
    " include define ifdef ifndef endif elif pragma"
)
_KEYWORDS: dict[str, frozenset[str]] = {
    "python": frozenset(
        [*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "self", "cls", "super"]
    ),
    "javascript": frozenset(_JS.split()),
    "typescript": frozenset((_JS + _TS).split()),
    "go": frozenset(
        "break case chan const continue default defer else fallthrough for func go goto if import"
        " interface map package range return select struct switch type var append cap clear close"
        " complex copy delete imag len make max min new panic print println real recover any bool"
        " byte comparable complex64 complex128 error float32 float64 int int8 int16 int32 int64"
        " rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil".split()
    ),
    "rust": frozenset(
        "as async await break const continue crate dyn else enum extern false fn for if impl in"
        " let loop match mod move mut pub ref return self Self static struct super trait true type"
        " unsafe use where while Some None Ok Err Option Result Vec String Box Rc Arc println"
        " print eprintln format vec panic assert assert_eq assert_ne write writeln todo"
        " unimplemented i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str"
        " Default Clone Copy Debug".split()
    ),
    "java": frozenset(
        "abstract assert boolean break byte case catch char class const continue default do double"
        " else enum extends final finally float for goto if implements import instanceof int"
        " interface long native new package private protected public return short static strictfp"
        " super switch synchronized this throw throws transient try void volatile while var"
        " yield null true false String Object Integer Long Double Boolean Character"
        " System Math List Map Set ArrayList HashMap Override Exception RuntimeException".split()
    ),
    "c": frozenset(_C.split()),
    "cpp": frozenset(
        (
            _C + " alignas alignof and asm catch class constexpr consteval constinit co_await"
            " co_return co_yield decltype delete explicit export friend mutable namespace new"
            " noexcept not nullptr operator or override private protected public static_cast"
            " dynamic_cast reinterpret_cast const_cast template this throw try typeid typename"
            " using virtual std string vector map unique_ptr shared_ptr make_unique make_shared"
            " cout cerr endl move"
        ).split()
    ),
}
_FAMILY = {"typescriptreact": "typescript", "javascriptreact": "javascript"}
_ALL_KEYWORDS = frozenset().union(*_KEYWORDS.values())
_STOPWORDS = _ALL_KEYWORDS
"""Identifiers left out of similarity token sets: they say nothing about what code is about."""


def _family(language: str) -> str:
    """The keyword family of a language name (typescriptreact -> typescript)."""
    return _FAMILY.get(language, language)


def _same_family(a: str, b: str) -> bool:
    """Languages whose definitions can serve each other (JS/TS, C/C++ headers)."""
    groups = ({"javascript", "typescript"}, {"c", "cpp"})
    fa, fb = _family(a), _family(b)
    return fa == fb or any(fa in g and fb in g for g in groups)


# --- public values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDocument:
    """A document the editor has open, as the document store gives it."""

    uri: str
    path: str
    """Display path (relative to the workspace when possible), used to label snippets."""
    language_id: str
    text: str
    version: int


@dataclass(frozen=True)
class Snippet:
    """Code from another open document to show the model before the current file."""

    path: str
    text: str
    score: float
    """Jaccard similarity to the code at the cursor; 1.0 for definitions."""
    kind: Kind
    start_line: int
    """0-based line of the document where `text` starts."""


# --- tokens and lines -------------------------------------------------------------------------

_IDENT = re.compile(r"[^\W\d]\w+")
"""Identifier-ish words of two characters or more (a cheap split, not the model's tokenizer)."""


def _token_set(text: str) -> set[str]:
    """Distinct identifiers of `text` that are not keywords."""
    return set(map(sys.intern, _IDENT.findall(text))) - _STOPWORDS


def _split_lines(text: str) -> list[str]:
    """Lines with their ends; rows are counted by '\\n' only, as tree-sitter counts them."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _span_around(text: str, offset: int, before: int, after: int) -> tuple[int, int]:
    """Offsets of lines [cursor line - before, cursor line + after] of `text`."""
    offset = max(0, min(offset, len(text)))
    start = offset
    for _ in range(before + 1):
        start = text.rfind("\n", 0, start)
        if start < 0:
            break
    start = start + 1 if start >= 0 else 0
    end = offset
    for _ in range(after + 1):
        nxt = text.find("\n", end)
        if nxt < 0:
            end = len(text)
            break
        end = nxt + 1
    return start, end


def query_around(text: str, offset: int) -> str:
    """The similarity query: the lines around the cursor."""
    start, end = _span_around(text, offset, QUERY_LINES_BEFORE, QUERY_LINES_AFTER)
    return text[start:end]


def _cost(path: str, text: str, count_tokens: CountTokens) -> int:
    """Tokens a snippet takes: its text plus its path (the label a profile renders)."""
    return count_tokens(text) + count_tokens(path)


def _overlaps(ranges: list[tuple[int, int]] | None, start: int, end: int) -> bool:
    return bool(ranges) and any(start < e and s < end for s, e in ranges or ())


def _best_first(items: list[T], first: int) -> Iterator[T]:
    """`items` in sorted order, sorting only the `first` smallest unless more are asked for."""
    top = heapq.nsmallest(first, items)
    yield from top
    if len(items) > first:
        yield from sorted(items)[first:]


# --- definitions: tree-sitter queries ---------------------------------------------------------

_JS_QUERY = """
(function_declaration name: (identifier) @name) @def
(generator_function_declaration name: (identifier) @name) @def
(method_definition name: [(property_identifier) (private_property_identifier)] @name) @def
(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)])) @def
(variable_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)])) @def
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @def)
(program (export_statement
  (lexical_declaration (variable_declarator name: (identifier) @name)) @def))
"""
_C_QUERY = """
(function_definition declarator: [
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (pointer_declarator declarator: (pointer_declarator
    declarator: (function_declarator declarator: (_) @name)))
]) @def
(declaration declarator: [
  (function_declarator declarator: (identifier) @name)
  (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
]) @def
(struct_specifier name: (type_identifier) @name body: (_)) @def
(union_specifier name: (type_identifier) @name body: (_)) @def
(enum_specifier name: (type_identifier) @name body: (_)) @def
(type_definition declarator: (type_identifier) @name) @def
(preproc_def name: (identifier) @name) @def
(preproc_function_def name: (identifier) @name) @def
"""
_QUERIES: dict[str, str] = {
    "python": """
(function_definition name: (identifier) @name) @def
(class_definition name: (identifier) @name) @def
(module (expression_statement (assignment left: (identifier) @name)) @def)
""",
    "javascript": _JS_QUERY + "(class_declaration name: (identifier) @name) @def\n",
    "typescript": _JS_QUERY
    + """
(class_declaration name: (type_identifier) @name) @def
(abstract_class_declaration name: (type_identifier) @name) @def
(interface_declaration name: (type_identifier) @name) @def
(type_alias_declaration name: (type_identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
""",
    "go": """
(function_declaration name: (identifier) @name) @def
(method_declaration name: (field_identifier) @name) @def
(type_declaration (type_spec name: (type_identifier) @name)) @def
(type_declaration (type_alias name: (type_identifier) @name)) @def
(const_declaration (const_spec name: (identifier) @name)) @def
(source_file (var_declaration (var_spec name: (identifier) @name)) @def)
""",
    "rust": """
(function_item name: (identifier) @name) @def
(struct_item name: (type_identifier) @name) @def
(enum_item name: (type_identifier) @name) @def
(union_item name: (type_identifier) @name) @def
(trait_item name: (type_identifier) @name) @def
(type_item name: (type_identifier) @name) @def
(const_item name: (identifier) @name) @def
(static_item name: (identifier) @name) @def
(macro_definition name: (identifier) @name) @def
(impl_item !trait type: [(type_identifier) @name (generic_type type: (type_identifier) @name)]) @def
""",
    "java": """
(class_declaration name: (identifier) @name) @def
(interface_declaration name: (identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
(record_declaration name: (identifier) @name) @def
(method_declaration name: (identifier) @name) @def
""",
    "c": _C_QUERY,
    "cpp": _C_QUERY
    + """
(function_definition declarator: (reference_declarator
  (function_declarator declarator: (_) @name))) @def
(class_specifier name: (type_identifier) @name body: (_)) @def
(alias_declaration name: (type_identifier) @name) @def
""",
}
"""Per language: each pattern captures a definition (@def) and its name (@name)."""

_WRAPPERS = frozenset({"decorated_definition", "export_statement", "template_declaration"})
"""Parents that belong to the definition they wrap (decorators, `export`, `template <...>`)."""
_LEADING = frozenset({"comment", "line_comment", "block_comment", "attribute_item"})
"""Siblings right above a definition that belong to it (doc comments, `#[derive]`)."""
_FUNCTIONS = frozenset(
    {
        "function_definition",
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "method_declaration",
        "constructor_declaration",
        "function_item",
        "arrow_function",
        "function_expression",
    }
)
"""Nodes whose body an outline elides (the members of a class, impl or trait)."""
_BODIES = frozenset(
    {
        "block",
        "statement_block",
        "compound_statement",
        "class_body",
        "interface_body",
        "enum_body",
        "object_type",
        "declaration_list",
        "field_declaration_list",
        "enum_variant_list",
        "enumerator_list",
    }
)
"""Node types that are a definition's body when it has no `body` field (Go struct types)."""
_NAME_WRAPPERS = frozenset({"qualified_identifier", "template_function", "scoped_identifier"})

Cut = tuple[int, int, str]
"""Replace source bytes [start, end) by a text."""


@cache
def _query(language: str) -> Query | None:
    spec = language_for(language)
    source = _QUERIES.get(_family(spec.name))
    if source is None or not spec.module:
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


def _simple_name(node: Node) -> str:
    """`Foo::bar` -> `bar`; other names as written."""
    while node.type in _NAME_WRAPPERS and (inner := node.child_by_field_name("name")) is not None:
        node = inner
    return (node.text or b"").decode("utf-8", "replace")


def _find_body(node: Node) -> Node | None:
    """The definition's body: its `body` field, else a body-like node at most 3 levels down."""
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    level = node.named_children
    for _ in range(3):
        deeper: list[Node] = []
        for child in level:
            if child.type in _BODIES:
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


def _member_cuts(node: Node, source: bytes, python: bool) -> Iterator[Cut]:
    """Cuts eliding the bodies of the functions in a container (methods of a class, impl)."""
    for child in node.named_children:
        if child.type in _FUNCTIONS:
            body = child.child_by_field_name("body")
            cut = _elide(body, source, python) if body is not None else None
            if cut is not None:
                yield cut
        else:
            yield from _member_cuts(child, source, python)


def _starts_line(source: bytes, byte: int) -> bool:
    return not source[source.rfind(b"\n", 0, byte) + 1 : byte].strip()


def _definition(name: str, node: Node, source: bytes, python: bool) -> _Definition:
    outer = node
    while outer.parent is not None and outer.parent.type in _WRAPPERS:
        outer = outer.parent
    first = outer
    sibling = outer.prev_named_sibling
    while (
        sibling is not None
        and sibling.type in _LEADING
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
    body = _find_body(node)
    if body is not None:
        if node.type not in _FUNCTIONS:
            members = tuple(_member_cuts(body, source, python))
            if members:
                variants.append(members)
        own = _elide(body, source, python)
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
    source, python = syntax.source, spec.name == "python"
    found: dict[str, list[_Definition]] = {}
    seen: set[tuple[str, int, int]] = set()
    for _, captures in QueryCursor(query).matches(syntax.root):
        names, nodes = captures.get("name"), captures.get("def")
        if not names or not nodes:
            continue
        name, node = _simple_name(names[0]), nodes[0]
        key = (name, node.start_byte, node.end_byte)
        if not name or key in seen:
            continue
        seen.add(key)
        found.setdefault(name, []).append(_definition(name, node, source, python))
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


# --- the per-document index -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: int
    """First line (0-based)."""
    end: int
    """Line after the last."""
    tokens: frozenset[str]


class _Entry:
    """What is known about one version of one document: redacted lines, windows, definitions."""

    __slots__ = (
        "_absent",
        "_definitions",
        "_source",
        "_windows",
        "lines",
        "redacted",
        "spec",
        "text",
        "version",
    )

    def __init__(self, doc: OpenDocument) -> None:
        self.version = doc.version
        self.text = doc.text
        self.redacted = redact(doc.text)  # line structure kept: line numbers still match
        self.lines = _split_lines(self.redacted)
        self.spec = language_for(doc.language_id, doc.path)
        self._windows: tuple[_Window, ...] | None = None
        self._definitions: dict[str, list[_Definition]] | None = None
        self._source = b""
        self._absent: set[str] = set()
        """Names looked up before the document was parsed that it does not even mention."""

    def matches(self, doc: OpenDocument) -> bool:
        return self.version == doc.version and (self.text is doc.text or self.text == doc.text)

    def windows(self) -> tuple[_Window, ...]:
        if self._windows is None:
            lines, n = self.lines, len(self.lines)
            step = math.gcd(WINDOW_LINES, WINDOW_STRIDE)  # windows are unions of blocks
            blocks = [_token_set("".join(lines[b : b + step])) for b in range(0, n, step)]
            windows = []
            for start in range(0, n, WINDOW_STRIDE):
                if start > 0 and start - WINDOW_STRIDE + WINDOW_LINES >= n:
                    break  # the previous window already reached the end
                end = min(n, start + WINDOW_LINES)
                tokens = frozenset().union(*blocks[start // step : -(-end // step)])
                if len(tokens) >= MIN_WINDOW_TOKENS:
                    windows.append(_Window(start, end, tokens))
            self._windows = tuple(windows)
        return self._windows

    def window_text(self, window: _Window) -> str:
        return "".join(self.lines[window.start : window.end]).rstrip()

    def definitions(self, name: str) -> list[_Definition]:
        if self._definitions is None:
            if name in self._absent:
                return []
            if name not in self.redacted:  # cannot define it: no need to parse (yet)
                if len(self._absent) >= MAX_ABSENT_NAMES:
                    self._absent.clear()
                self._absent.add(name)
                return []
            self._source, self._definitions = _index_definitions(self.spec, self.redacted)
        return self._definitions.get(name, [])

    def render(self, definition: _Definition, cuts: tuple[Cut, ...]) -> str:
        return _render(self._source, definition, cuts)


@dataclass(frozen=True, slots=True)
class _Pick:
    uri: str
    snippet: Snippet
    end_line: int
    cost: int


def _unique(docs: Iterable[OpenDocument], limit: int) -> list[OpenDocument]:
    """The first `limit` usable documents, first of each uri; secret, empty and oversized ones
    left out. The limit keeps every document of a call in the index (no rebuild churn)."""
    seen: set[str] = set()
    out: list[OpenDocument] = []
    for doc in docs:
        if len(out) >= limit:
            break
        if doc.uri in seen or not doc.text or len(doc.text) > MAX_INDEXED_CHARS:
            continue
        seen.add(doc.uri)
        if not is_secret_path(doc.uri) and not is_secret_path(doc.path):
            out.append(doc)
    return out


def _order(pick: _Pick) -> tuple[str, int, str]:
    return (pick.snippet.path, pick.snippet.start_line, pick.uri)


class SnippetIndex:
    """Windows and definitions of open documents, built once per (uri, version).

    Holds at most `max_documents` documents (one entry per uri: a new version replaces the old);
    the least recently used is dropped first. A call looks at the first `max_documents` usable
    documents it is given (callers pass the most recently used first), so one call never evicts
    its own entries. Thread-safe; all state is in memory.
    """

    def __init__(self, max_documents: int = MAX_INDEXED_DOCUMENTS) -> None:
        self.max_documents = max(1, max_documents)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uri: object) -> bool:
        return uri in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _entry(self, doc: OpenDocument) -> _Entry:
        with self._lock:
            entry = self._entries.get(doc.uri)
            if entry is not None and entry.matches(doc):
                self._entries.move_to_end(doc.uri)
                return entry
        entry = _Entry(doc)  # built outside the lock: redaction of a large text takes a while
        with self._lock:
            self._entries[doc.uri] = entry
            self._entries.move_to_end(doc.uri)
            while len(self._entries) > self.max_documents:
                self._entries.popitem(last=False)
        return entry

    def similar_snippets(
        self,
        query: str,
        docs: Sequence[OpenDocument],
        *,
        max_snippets: int = MAX_SNIPPETS,
        budget: int,
        count_tokens: CountTokens,
    ) -> list[Snippet]:
        """Windows of `docs` most similar to `query` (Jaccard over identifier sets), at most
        `max_snippets`, not overlapping, within `budget` tokens, sorted by (path, start_line)."""
        usable = _unique(docs, self.max_documents)
        picks = self._similar(query, usable, max_snippets, budget, count_tokens, {}, set())
        return [p.snippet for p in sorted(picks, key=_order)]

    def definitions_for(
        self,
        names: Collection[str],
        docs: Sequence[OpenDocument],
        *,
        budget: int,
        count_tokens: CountTokens,
    ) -> list[Snippet]:
        """Definitions of `names` (a sequence is taken as priority order) found in `docs`,
        long ones elided to an outline or signature, within `budget` tokens, sorted by
        (path, start_line)."""
        usable = _unique(docs, self.max_documents)
        picks = self._definitions(names, usable, budget, count_tokens)
        return [p.snippet for p in sorted(picks, key=_order)]

    def _similar(
        self,
        query: str,
        docs: list[OpenDocument],
        max_snippets: int,
        budget: int,
        count_tokens: CountTokens,
        taken: dict[str, list[tuple[int, int]]],
        seen: set[str],
    ) -> list[_Pick]:
        wanted = _token_set(query)
        if not wanted or budget <= 0 or max_snippets <= 0:
            return []
        n_wanted = len(wanted)
        found: list[tuple[OpenDocument, _Entry]] = []
        ranked: list[tuple[float, str, int, str, int, int]] = []  # sorts natively, best first
        for d, doc in enumerate(docs):
            entry = self._entry(doc)
            found.append((doc, entry))
            for w, window in enumerate(entry.windows()):
                shared = len(wanted & window.tokens)
                if shared:
                    score = shared / (n_wanted + len(window.tokens) - shared)
                    if score >= MIN_SIMILARITY:
                        ranked.append((-score, doc.path, window.start, doc.uri, d, w))
        picks: list[_Pick] = []
        used, tries = 0, 0
        for neg_score, path, start, uri, d, w in _best_first(ranked, 16 * max_snippets):
            if len(picks) >= max_snippets or tries >= 4 * max_snippets:
                break
            doc, entry = found[d]
            window = entry.windows()[w]
            if _overlaps(taken.get(uri), start, window.end):
                continue
            text = entry.window_text(window)
            if text in seen:
                continue
            tries += 1
            cost = _cost(path, text, count_tokens)
            if used + cost > budget:
                continue
            used += cost
            seen.add(text)
            taken.setdefault(uri, []).append((start, window.end))
            snippet = Snippet(path, text, round(-neg_score, 6), "similar", start)
            picks.append(_Pick(uri, snippet, window.end, cost))
        return picks

    def _definitions(
        self,
        names: Collection[str],
        docs: list[OpenDocument],
        budget: int,
        count_tokens: CountTokens,
    ) -> list[_Pick]:
        if isinstance(names, Sequence) and not isinstance(names, str):
            ordered = list(dict.fromkeys(names))
        else:
            ordered = sorted(names)
        picks: list[_Pick] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        used = 0
        for name in ordered:
            if used >= budget:
                break
            shown = 0
            for doc in docs:
                if shown >= MAX_DEFINITIONS_PER_NAME:
                    break
                entry = self._entry(doc)
                for definition in entry.definitions(name):
                    if shown >= MAX_DEFINITIONS_PER_NAME:
                        break
                    ranges = taken.setdefault(doc.uri, [])
                    if _overlaps(ranges, definition.start_line, definition.end_line):
                        shown += 1  # already visible inside another definition
                        continue
                    chosen = _choose_variant(
                        entry, definition, doc.path, budget - used, count_tokens
                    )
                    if chosen is None:
                        continue
                    text, cost = chosen
                    used += cost
                    shown += 1
                    ranges.append((definition.start_line, definition.end_line))
                    snippet = Snippet(doc.path, text, 1.0, "definition", definition.start_line)
                    picks.append(_Pick(doc.uri, snippet, definition.end_line, cost))
        return picks


def _choose_variant(
    entry: _Entry, definition: _Definition, path: str, budget: int, count_tokens: CountTokens
) -> tuple[str, int] | None:
    """The longest way to show `definition` within MAX_DEFINITION_LINES and `budget`; else the
    shortest that fits the budget; None when nothing fits."""
    fallback: tuple[str, int] | None = None
    for cuts in definition.variants:
        text = entry.render(definition, cuts)
        cost = _cost(path, text, count_tokens)
        if cost > budget:
            continue
        if text.count("\n") < MAX_DEFINITION_LINES:
            return text, cost
        fallback = (text, cost)
    return fallback


DEFAULT_INDEX = SnippetIndex()
"""The index the module-level functions use when none is given."""


def similar_snippets(
    query: str,
    docs: Sequence[OpenDocument],
    *,
    max_snippets: int = MAX_SNIPPETS,
    budget: int,
    count_tokens: CountTokens,
    index: SnippetIndex | None = None,
) -> list[Snippet]:
    """`SnippetIndex.similar_snippets` on `index` (default: `DEFAULT_INDEX`)."""
    return (DEFAULT_INDEX if index is None else index).similar_snippets(
        query, docs, max_snippets=max_snippets, budget=budget, count_tokens=count_tokens
    )


def definitions_for(
    names: Collection[str],
    docs: Sequence[OpenDocument],
    *,
    budget: int,
    count_tokens: CountTokens,
    index: SnippetIndex | None = None,
) -> list[Snippet]:
    """`SnippetIndex.definitions_for` on `index` (default: `DEFAULT_INDEX`)."""
    return (DEFAULT_INDEX if index is None else index).definitions_for(
        names, docs, budget=budget, count_tokens=count_tokens
    )


# --- names near the cursor (regular expressions, no tree) ------------------------------------

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
_IMPORTS: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n#;]*))", re.MULTILINE
    ),
    "javascript": re.compile(
        r"\bimport[ \t]+(?:type[ \t]+)?(?:([\w$]+)[ \t]*,?[ \t]*)?(?:\{([^}]*)\})?[ \t\n]*from\b"
    ),
    "rust": re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?use[ \t]+([^;]+);", re.MULTILINE),
    "java": re.compile(r"^[ \t]*import[ \t]+(?:static[ \t]+)?[\w.]*?(\w+)[ \t]*;", re.MULTILINE),
}
_IMPORTS["typescript"] = _IMPORTS["javascript"]
_ALIAS = re.compile(r"([^\W\d][\w$]*)(?:\s+as\s+([^\W\d][\w$]*))?")
_DEFINED = re.compile(
    r"\b(?:def|class|function\*?|func|fn|trait|interface|type|typedef|record"
    r"|namespace|const|let|var|static)[ \t]+(?:\([^)\n]*\)[ \t]*)?\*?([^\W\d]\w*)"
    r"|\b(?:struct|enum|union)[ \t]+([^\W\d]\w*)[ \t\r\n]*(?:<[^>{;]*>[ \t\r\n]*)?\{"
)
"""Names the current document defines, by keyword (a Go method's receiver is skipped); a
struct, enum or union only with its body (`struct buffer *b` uses `buffer`)."""
_C_LIKE_DEFINED = re.compile(
    r"^[ \t]*(?!(?:return|new|throw|else|case|await|yield|delete|goto)\b)"
    r"(?:[\w<>\[\],.*&:]+[ \t]+)+[*&]*(?:\w+::)*([^\W\d]\w*)[ \t]*\([^;\n]*$",
    re.MULTILINE,
)
"""`int foo(int x) {`, `public void run() {`: a type, a name, a parameter list, no `;`."""
_PY_ASSIGNED = re.compile(r"^[ \t]*([^\W\d]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE)
"""Assignments in Python (`MAX_SIZE = 10`, also inside `try:` or a function)."""
_DQ = r'"(?:[^"\\\n]|\\.)*"'
_SQ = r"'(?:[^'\\\n]|\\.)*'"
_BLOCK_COMMENT = r"//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"
_LEXICAL: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        rf"#[^\n]*|[rRbBuUfF]{{0,2}}(?:\"\"\"[\s\S]*?(?:\"\"\"|\Z)|'''[\s\S]*?(?:'''|\Z)|{_DQ}|{_SQ})"
    ),
    "javascript": re.compile(rf"{_BLOCK_COMMENT}|{_DQ}|{_SQ}|`(?:[^`\\]|\\.)*`"),
    "c": re.compile(rf"{_BLOCK_COMMENT}|{_DQ}|'(?:\\.[^'\n]{{0,8}}|[^'\\\n])'|`[^`]*`"),
}
"""Comments and string literals, blanked before names are looked for (docstrings are prose).
"c" serves every C-like language (a Rust lifetime `'a` is no character literal)."""
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(m: re.Match[str]) -> str:
    return _NOT_NEWLINE.sub(" ", m.group(0))


def _code_only(text: str, start: int, end: int, family: str) -> str:
    """text[start:end] with comments and strings blanked (offsets and lines kept). A docstring or
    block comment open at `start` is detected by counting delimiters before it."""
    region = text[start:end]
    if family == "python":
        opened = [q for q in ('"""', "'''") if text.count(q, 0, start) % 2]
        lexical = _LEXICAL["python"]
    else:
        opened = ["*/"] if text.rfind("/*", 0, start) > text.rfind("*/", 0, start) else []
        lexical = _LEXICAL["javascript" if family in ("javascript", "typescript") else "c"]
    for closer in opened[:1]:
        close = region.find(closer)
        cut = len(region) if close < 0 else close + len(closer)
        region = _NOT_NEWLINE.sub(" ", region[:cut]) + region[cut:]
    return lexical.sub(_blank, region)


def _imported(text: str, family: str) -> dict[str, str]:
    """Names the document imports: local name -> name in the defining module."""
    pattern = _IMPORTS.get(family)
    out: dict[str, str] = {}
    if pattern is None:
        return out
    for m in pattern.finditer(text):
        for group in m.groups():
            if not group:
                continue
            if family == "rust":
                group = re.sub(r"[\w:]*::", "", group)  # keep last path segments
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


def _defined(text: str, family: str) -> set[str]:
    """Names the document defines itself (cheap regular expressions, may miss a few)."""
    names = {m.group(1) or m.group(2) for m in _DEFINED.finditer(text)}
    if family == "python":
        names.update(m.group(1) for m in _PY_ASSIGNED.finditer(text))
    else:
        names.update(m.group(1) for m in _C_LIKE_DEFINED.finditer(text))
    return names


def names_near_cursor(text: str, offset: int, spec: LanguageSpec) -> list[str]:
    """Names used in the lines around the cursor that are worth a definition from another file:
    called (`foo(`), used as types (`Foo`, `struct foo`, `foo_t`) or imported (`from x import
    foo`, `import {foo}`, `use a::Foo`), without keywords, builtins and names the document
    defines itself. Nearest first; imported aliases map back to their original name.

    Found with regular expressions (no tree, any language): cheap enough for every keystroke.
    """
    family = _family(spec.name)
    start, end = _span_around(text, offset, NAME_LINES_BEFORE, NAME_LINES_AFTER)
    region = _code_only(text, start, end, family)
    cursor_line = text.count("\n", start, max(start, min(offset, len(text))))
    scope = _scan_scope(text, offset)
    imported = _imported(scope, family)
    keywords = _KEYWORDS.get(family, _ALL_KEYWORDS)
    excluded = keywords | _defined(scope, family)

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


# --- everything together ----------------------------------------------------------------------


def gather_context(
    current: OpenDocument,
    offset: int,
    others: Sequence[OpenDocument],
    *,
    budget: int,
    count_tokens: CountTokens,
    index: SnippetIndex | None = None,
) -> list[Snippet]:
    """Context from the other open documents for a cursor at `offset` in `current`.

    Secret-looking files, the current document and copies of it are skipped. Definitions of
    names used near the cursor come first (same language family, at most DEFINITION_SHARE of
    the budget), then windows similar to the code around the cursor, not overlapping them.
    Every text is redacted; the total fits `budget` tokens (text plus path per snippet). Each
    group is sorted by (path, start_line), so the prompt stays put while the user types.
    """
    if budget <= 0:
        return []
    index = DEFAULT_INDEX if index is None else index
    copies = (
        d
        for d in others
        if d.uri != current.uri and (not current.path or d.path != current.path)
        if d.text != current.text
    )
    docs = _unique(copies, index.max_documents)
    if not docs:
        return []
    spec = language_for(current.language_id, current.path)
    same = [d for d in docs if _same_family(language_for(d.language_id, d.path).name, spec.name)]
    names = names_near_cursor(current.text, offset, spec)
    definitions = index._definitions(names, same, int(budget * DEFINITION_SHARE), count_tokens)
    taken: dict[str, list[tuple[int, int]]] = {}
    for p in definitions:
        taken.setdefault(p.uri, []).append((p.snippet.start_line, p.end_line))
    seen = {p.snippet.text for p in definitions}
    left = budget - sum(p.cost for p in definitions)
    query = query_around(current.text, offset)
    similar = index._similar(query, docs, MAX_SNIPPETS, left, count_tokens, taken, seen)
    out = []
    for group in (definitions, similar):
        for p in sorted(group, key=_order):
            s = p.snippet
            text = redact(s.text)  # already redacted when indexed; kept as the last guard
            out.append(
                s if text == s.text else Snippet(s.path, text, s.score, s.kind, s.start_line)
            )
    return out
