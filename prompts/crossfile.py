"""Cross-file context: definitions of names used at the cursor, similar snippets of open files."""

from __future__ import annotations

from collections.abc import Sequence

from .crossfile_text import CountTokens, query_around
from .languages import language_for
from .names import names_near_cursor
from .secrets import redact
from .snippet_index import (
    DEFAULT_INDEX,
    MAX_DEFINITION_LINES,
    MAX_SNIPPETS,
    OpenDocument,
    Snippet,
    SnippetIndex,
    _order,
    _unique,
    definitions_for,
    similar_snippets,
)

__all__ = [
    "DEFAULT_INDEX",
    "MAX_DEFINITION_LINES",
    "CountTokens",
    "OpenDocument",
    "Snippet",
    "SnippetIndex",
    "definitions_for",
    "gather_context",
    "names_near_cursor",
    "query_around",
    "similar_snippets",
]

DEFINITION_SHARE = 2 / 3
"""Share of the context budget definitions may take; similar snippets get the rest."""


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
    same = [d for d in docs if language_for(d.language_id, d.path).family == spec.family]
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
