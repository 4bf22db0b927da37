"""Values the cursor analysis passes between its parts: region, scope, block and line facts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .lang.spec import ScopeKind

MAX_STEPS = 2000
"""Bound on tree walks and line scans, so odd inputs stay cheap."""
CLASS_LIKE = frozenset(
    {ScopeKind.CLASS, ScopeKind.STRUCT, ScopeKind.ENUM, ScopeKind.IMPL, ScopeKind.INTERFACE}
)
"""Scope kinds whose functions are methods."""


class Region(StrEnum):
    """What the cursor stands in."""

    CODE = "code"
    COMMENT = "comment"
    STRING = "string"


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
class Facts:
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


@dataclass(frozen=True)
class Body:
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
