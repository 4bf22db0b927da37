"""The `LanguageSpec` value: everything the context engine knows about one language."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from importlib import resources
from itertools import pairwise

from tree_sitter import Language

from .lexical import C_LEXICAL, C_LIKE_DEFINED


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


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


def scope_table(kinds: dict[ScopeKind, str]) -> dict[str, ScopeKind]:
    """Node type (or keyword) -> scope kind, from kind -> space-separated node types."""
    return {name: kind for kind, names in kinds.items() for name in names.split()}


@dataclass(frozen=True, eq=False)
class NodeTypes:
    """Node types of one grammar that the cursor, cross-file and soundness code look for."""

    scopes: dict[str, ScopeKind] = field(default_factory=dict)
    """Nodes that make a scope around the cursor, and its kind."""
    keyword_scopes: dict[str, ScopeKind] = field(default_factory=dict)
    """Keywords naming the construct that owns a `{` tree-sitter left inside an ERROR node."""
    comments: frozenset[str] = frozenset()
    """Comment nodes (every visible node type whose name holds 'comment')."""
    cases: frozenset[str] = frozenset()
    """Bodies opened by a `:` (switch cases), whose header is their own first line."""
    headed: frozenset[str] = frozenset()
    """Other bodies that are their own header (Go: the braces are children of the statement)."""
    blocks: frozenset[str] = frozenset()
    """Other nodes holding a block's statements or members (Python `block`, a `{...}` body)."""
    strings: frozenset[str] = frozenset()
    """String and character literals and their contents."""
    interpolations: frozenset[str] = frozenset()
    """Code inside a string (`${...}`, f-string braces)."""
    names: frozenset[str] = frozenset()
    """Identifiers that name a construct."""
    parameters: frozenset[str] = frozenset()
    """Parameter lists (a function header whose keyword tree-sitter lost)."""
    fill_scopes: frozenset[str] = frozenset()
    """Nodes a multi-line completion fills (a body) and may close (soundness checks)."""
    wrappers: frozenset[str] = frozenset()
    """Parents that belong to the definition they wrap (decorators, `export`, `template <...>`)."""
    leading: frozenset[str] = frozenset()
    """Siblings right above a definition that belong to it (doc comments, `#[derive]`)."""
    functions: frozenset[str] = frozenset()
    """Functions whose body an outline of their container elides."""
    definition_bodies: frozenset[str] = frozenset()
    """A definition's body when it has no `body` field (Go struct types)."""
    name_wrappers: frozenset[str] = frozenset()
    """Qualified names whose `name` field is the simple name (`Foo::bar`)."""

    @cached_property
    def self_headed(self) -> frozenset[str]:
        """Bodies that are their own header: cases and `headed`."""
        return self.cases | self.headed

    @cached_property
    def bodies(self) -> frozenset[str]:
        """Every node holding a block's statements or members."""
        return self.self_headed | self.blocks

    def all_types(self) -> dict[str, frozenset[str]]:
        """Every node type named, by field (for consistency checks)."""
        return {name: frozenset(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class LanguageSpec:
    """One language: its grammar and what prompts need to know about it. One instance each."""

    name: str
    """Canonical name (also the LSP languageId)."""
    module: str
    """Python package of the tree-sitter grammar ('' for none)."""
    function: str
    """Function of `module` returning the grammar pointer."""
    extensions: tuple[str, ...]
    """File extensions (lower case, with the dot)."""
    aliases: tuple[str, ...] = ()
    """Other LSP languageIds that mean this language."""
    line_comment: str = "//"
    """Line comment marker, also used to label context snippets."""
    block_comment: tuple[str, str] | None = ("/*", "*/")
    """Block comment delimiters, if the language has them."""
    quotes: tuple[str, ...] = ('"', "'")
    """String delimiters, longest first (an unterminated string is looked for with them)."""
    long_strings: tuple[str, ...] = ()
    """Delimiters of strings that span lines (Python docstrings)."""
    indent_blocks: bool = False
    """Blocks follow indentation (Python), not braces."""
    keywords: frozenset[str] = frozenset()
    """Keywords and builtins: never looked up in other files, never shared identifiers."""
    family: str = ""
    """Languages whose definitions serve each other share it (JS/TS, C/C++ headers)."""
    nodes: NodeTypes = field(default_factory=NodeTypes)
    """Node types of the grammar the analysis looks for."""
    tags: bool = False
    """Definitions come from the grammar package's own queries/tags.scm (and `definitions`)."""
    definitions: str = ""
    """Tree-sitter patterns capturing a definition (@def) and its name (@name)."""
    imports: re.Pattern[str] | None = None
    """Import statements; groups hold the imported names (with `as` aliases)."""
    import_path: re.Pattern[str] | None = None
    """Path segments dropped from an imported name (Rust `a::b::`)."""
    lexical: re.Pattern[str] = C_LEXICAL
    """Comments and string literals, blanked before names are looked for."""
    local_definitions: re.Pattern[str] = C_LIKE_DEFINED
    """Names a document defines beyond the keyword forms (assignments, C-style functions)."""

    @property
    def language(self) -> Language:
        """The tree-sitter Language (loaded once)."""
        return _load(self.module, self.function)

    @cached_property
    def definition_query(self) -> str:
        """The definition patterns: the grammar's shipped tags (if used), then `definitions`."""
        shipped = shipped_definitions(self.module) if self.tags else ""
        return shipped + self.definitions


@cache
def _load(module: str, function: str) -> Language:
    return Language(getattr(importlib.import_module(module), function)())


_DEFINITION_CAPTURE = re.compile(r"@definition\.[\w.]+")


def _top_level_patterns(source: str) -> list[str]:
    """The patterns of a query file: each top-level form with the captures after it
    (comments dropped, strings kept whole)."""
    code: list[str] = []
    starts: list[int] = []
    depth, i, n = 0, 0, len(source)
    while i < n:
        ch = source[i]
        if ch == ";":
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == '"':
            end = i + 1
            while end < n and source[end] != '"':
                end += 2 if source[end] == "\\" else 1
            code.append(source[i : end + 1])
            i = end + 1
            continue
        if ch in "([":
            if depth == 0:
                starts.append(len(code))
            depth += 1
        elif ch in ")]":
            depth -= 1
        code.append(ch)
        i += 1
    bounds = [*starts, len(code)]
    return ["".join(code[a:b]).strip() for a, b in pairwise(bounds)]


@cache
def shipped_definitions(module: str) -> str:
    """The definition patterns of `module`'s bundled queries/tags.scm, captures renamed to
    @def (references dropped); '' when the package ships none."""
    try:
        tags = resources.files(module).joinpath("queries", "tags.scm").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        return ""
    patterns = [p for p in _top_level_patterns(tags) if _DEFINITION_CAPTURE.search(p)]
    return "".join(_DEFINITION_CAPTURE.sub("@def", p) + "\n" for p in patterns)
