"""The bounded index of open documents' windows and definitions, and the choice of snippets."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .crossfile_text import CountTokens, _best_first, _cost, _overlaps, _split_lines, _token_set
from .definitions import Cut, _Definition, _index_definitions, _render
from .languages import language_for
from .secrets import is_secret_path, redact

Kind = Literal["similar", "definition"]
WINDOW_LINES = 20
"""Lines in one window of another document (the unit of a similar snippet)."""
WINDOW_STRIDE = 10
"""Lines between the starts of two windows (windows overlap by half)."""
MIN_SIMILARITY = 0.1
"""Jaccard similarity below which a window is not worth its tokens."""
MAX_SNIPPETS = 3
"""Similar snippets in one prompt, at most."""
MIN_WINDOW_TOKENS = 3
"""Windows with fewer distinct identifiers (blank lines, braces) are never candidates."""
MAX_DEFINITIONS_PER_NAME = 2
"""Definitions shown for one name (`get`, `new` are defined everywhere)."""
MAX_DEFINITION_LINES = 30
"""A definition longer than this is shown as an outline or signature with its body elided."""
MAX_INDEXED_DOCUMENTS = 32
"""Documents whose windows and definitions `SnippetIndex` keeps (least recently used dropped)."""
MAX_INDEXED_CHARS = 1_000_000
"""Documents longer than this are not used as context (indexing them costs too much)."""
MAX_ABSENT_NAMES = 4096
"""Names remembered per document as not mentioned in it (cleared when full)."""


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
