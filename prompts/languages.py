"""Languages the context engine knows: the registry of specs, and languageId / extension -> spec."""

from __future__ import annotations

from pathlib import PurePosixPath

from .lang.c import CPP, C
from .lang.go import GO
from .lang.java import JAVA
from .lang.javascript import JAVASCRIPT, TYPESCRIPT, TYPESCRIPT_REACT
from .lang.python import PYTHON
from .lang.rust import RUST
from .lang.spec import LanguageSpec, NodeTypes, ScopeKind

__all__ = [
    "LANGUAGES",
    "PLAIN_TEXT",
    "STOPWORDS",
    "LanguageSpec",
    "NodeTypes",
    "ScopeKind",
    "language_for",
]

LANGUAGES: tuple[LanguageSpec, ...] = (
    PYTHON,
    JAVASCRIPT,
    TYPESCRIPT,
    TYPESCRIPT_REACT,
    GO,
    RUST,
    JAVA,
    C,
    CPP,
)
"""Every language with a grammar; adding a language means adding its spec here."""

STOPWORDS: frozenset[str] = frozenset().union(*(spec.keywords for spec in LANGUAGES))
"""Every language's keywords: left out of similarity token sets, whatever the language."""

PLAIN_TEXT = LanguageSpec(
    "plaintext", "", "", (), line_comment="#", keywords=STOPWORDS, family="plaintext"
)
"""Fallback for unknown languages: no tree, completions from text alone."""

_BY_ID = {alias: spec for spec in LANGUAGES for alias in (spec.name, *spec.aliases)}
_BY_EXT = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def language_for(language_id: str | None, path: str = "") -> LanguageSpec:
    """The language of a document: its LSP languageId, else its extension, else plain text."""
    if language_id and (spec := _BY_ID.get(language_id.lower())):
        return spec
    suffix = PurePosixPath(path.split("?", 1)[0]).suffix.lower()
    return _BY_EXT.get(suffix, PLAIN_TEXT)
