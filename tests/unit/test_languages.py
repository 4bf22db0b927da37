"""Tables of checks that every language spec is complete and agrees with its grammar."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tree_sitter import Query

from moe_lsp.prompts.lang.spec import shipped_definitions
from moe_lsp.prompts.languages import LANGUAGES, PLAIN_TEXT, LanguageSpec, language_for

SPECS = {spec.name: spec for spec in LANGUAGES}


def _in_grammar(spec: LanguageSpec, kind: str) -> bool:
    language = spec.language
    return any(language.id_for_node_kind(kind, named) is not None for named in (True, False))


def node_types_exist(spec: LanguageSpec) -> list[str]:
    return [
        f"{field}: {kind}"
        for field, kinds in spec.nodes.all_types().items()
        for kind in sorted(kinds)
        if not _in_grammar(spec, kind)
    ]


def query_compiles(spec: LanguageSpec) -> list[str]:
    query = Query(spec.language, spec.definition_query)
    names = {query.capture_name(i) for i in range(query.capture_count)}
    return [] if query.pattern_count and {"def", "name"} <= names else [f"captures {names}"]


def tags_shipped(spec: LanguageSpec) -> list[str]:
    return ["no queries/tags.scm"] if spec.tags and not shipped_definitions(spec.module) else []


def lexical_facts(spec: LanguageSpec) -> list[str]:
    problems = []
    if not spec.line_comment or not spec.quotes or not spec.keywords or not spec.family:
        problems.append("line comment, quotes, keywords and family are required")
    comment = spec.lexical.match(f"{spec.line_comment} note")
    if comment is None or comment.group(0) != f"{spec.line_comment} note":
        problems.append("the lexical pattern does not blank a line comment")
    if spec.block_comment is not None:
        opener, closer = spec.block_comment
        if spec.lexical.fullmatch(f"{opener} note {closer}") is None:
            problems.append("the lexical pattern does not blank a block comment")
    return problems


def core_node_types(spec: LanguageSpec) -> list[str]:
    nodes = spec.nodes
    required = {
        "scopes": nodes.scopes,
        "comments": nodes.comments,
        "bodies": nodes.bodies,
        "strings": nodes.strings,
        "names": nodes.names,
        "fill_scopes": nodes.fill_scopes,
        "functions": nodes.functions,
        "definition_bodies": nodes.definition_bodies,
    }
    return [f"{name} is empty" for name, kinds in required.items() if not kinds]


def names_and_files(spec: LanguageSpec) -> list[str]:
    problems = [f"extension {e!r}" for e in spec.extensions if e != e.lower() or e[:1] != "."]
    problems += [f"id {i!r}" for i in (spec.name, *spec.aliases) if language_for(i) is not spec]
    problems += [f"file f{e}" for e in spec.extensions if language_for(None, f"f{e}") is not spec]
    return problems if spec.extensions else ["no extensions"]


CHECKS: dict[str, Callable[[LanguageSpec], list[str]]] = {
    "node types exist in the grammar": node_types_exist,
    "definition query compiles with @def and @name": query_compiles,
    "shipped tags query present when used": tags_shipped,
    "comment syntax, quotes, keywords, family": lexical_facts,
    "core node types named": core_node_types,
    "languageIds and extensions resolve to the spec": names_and_files,
}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("language", SPECS)
def test_spec_is_complete(language: str, check: str) -> None:
    assert CHECKS[check](SPECS[language]) == []


@pytest.mark.parametrize(
    ("language", "tags"),
    [("python", True), ("java", True), ("go", False), ("c", False), ("typescript", False)],
)
def test_shipped_tags_used(language: str, tags: bool) -> None:
    spec = SPECS[language]
    assert spec.tags is tags
    if tags:
        assert spec.definition_query.startswith(shipped_definitions(spec.module))


@pytest.mark.parametrize(
    ("language_id", "path", "expected"),
    [
        ("python", "", "python"),
        ("javascriptreact", "", "javascript"),
        ("C++", "", "cpp"),
        ("", "src/main.rs", "rust"),
        ("", "a/b.TSX", "typescriptreact"),
        ("unknown", "notes.txt", "plaintext"),
    ],
)
def test_language_for(language_id: str, path: str, expected: str) -> None:
    assert language_for(language_id, path).name == expected


def test_plain_text_has_every_keyword() -> None:
    assert not PLAIN_TEXT.module
    assert all(spec.keywords <= PLAIN_TEXT.keywords for spec in LANGUAGES)
