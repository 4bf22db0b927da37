"""Languages the context engine knows: LSP languageId or file extension -> tree-sitter grammar."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from tree_sitter import Language


@dataclass(frozen=True)
class LanguageSpec:
    """One language: its grammar and the few lexical facts prompts need."""

    name: str
    """Canonical name (also the LSP languageId)."""
    module: str
    """Python package of the tree-sitter grammar."""
    function: str
    """Function of `module` returning the grammar pointer."""
    line_comment: str
    """Line comment marker, used to label context snippets."""
    extensions: tuple[str, ...]
    """File extensions (lower case, with the dot)."""
    aliases: tuple[str, ...] = ()
    """Other LSP languageIds that mean this language."""

    @property
    def language(self) -> Language:
        """The tree-sitter Language (loaded once)."""
        return _load(self.module, self.function)


@cache
def _load(module: str, function: str) -> Language:
    return Language(getattr(importlib.import_module(module), function)())


PLAIN_TEXT = LanguageSpec("plaintext", "", "", "#", ())
"""Fallback for unknown languages: no tree, completions from text alone."""

LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", "language", "#", (".py", ".pyi", ".pyw")),
    LanguageSpec(
        "javascript",
        "tree_sitter_javascript",
        "language",
        "//",
        (".js", ".mjs", ".cjs", ".jsx"),
        ("javascriptreact",),
    ),
    LanguageSpec(
        "typescript", "tree_sitter_typescript", "language_typescript", "//", (".ts", ".mts", ".cts")
    ),
    LanguageSpec("typescriptreact", "tree_sitter_typescript", "language_tsx", "//", (".tsx",)),
    LanguageSpec("go", "tree_sitter_go", "language", "//", (".go",)),
    LanguageSpec("rust", "tree_sitter_rust", "language", "//", (".rs",)),
    LanguageSpec("java", "tree_sitter_java", "language", "//", (".java",)),
    LanguageSpec("c", "tree_sitter_c", "language", "//", (".c", ".h")),
    LanguageSpec(
        "cpp",
        "tree_sitter_cpp",
        "language",
        "//",
        (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx"),
        ("c++",),
    ),
)

_BY_ID = {alias: spec for spec in LANGUAGES for alias in (spec.name, *spec.aliases)}
_BY_EXT = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def language_for(language_id: str | None, path: str = "") -> LanguageSpec:
    """The language of a document: its LSP languageId, else its extension, else plain text."""
    if language_id and (spec := _BY_ID.get(language_id.lower())):
        return spec
    suffix = PurePosixPath(path.split("?", 1)[0]).suffix.lower()
    return _BY_EXT.get(suffix, PLAIN_TEXT)
