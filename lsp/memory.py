"""Owns the memory budget of one session's documents: their texts first, then syntax trees,
the trees of the documents edited longest ago dropped first."""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024
"""Memory for one session's document texts and syntax trees (setting `memoryBudgetBytes`)."""
TREE_BYTES_PER_CHAR = 40
"""Estimated memory of a syntax tree per character of its text, its own copies of the text
(str and UTF-8 bytes) included. Measured here with tree-sitter 0.26 on 1 MB of CPython's
standard library: 23 bytes a character parsed as Python, 40 parsed as JavaScript (error
nodes); the larger is used. `tests/bench/bench_memory.py` measures it again."""


class HasTree(Protocol):
    """A document whose tree the budget may drop."""

    uri: str

    def drop_tree(self) -> None: ...


def text_cost(text: str) -> int:
    """Bytes a str takes (1, 2 or 4 a character, as CPython stores it); O(1)."""
    return sys.getsizeof(text)


def tree_cost(chars: int) -> int:
    """Estimated bytes of a syntax tree of a text of `chars` characters."""
    return chars * TREE_BYTES_PER_CHAR


class MemoryBudget:
    """Bytes for texts and trees of a session's documents.

    Texts are counted exactly (`text_cost`); what they leave is for trees, estimated from the
    text's size (`tree_cost`). A tree is admitted only if it fits in what the texts leave; to
    make room, the trees of the documents edited longest ago are dropped (their documents are
    completed as plain text until a request needs the tree again and it fits again).
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES) -> None:
        self.limit = limit
        self._texts: dict[str, int] = {}
        self._text_total = 0
        self._trees: OrderedDict[str, tuple[int, HasTree]] = OrderedDict()
        """Documents holding a tree, the one edited longest ago first: (estimated bytes, doc)."""
        self._tree_total = 0
        self.dropped = 0
        """Trees dropped to make room (a counter)."""

    @property
    def text_bytes(self) -> int:
        """Bytes held by document texts."""
        return self._text_total

    @property
    def tree_bytes(self) -> int:
        """Estimated bytes held by syntax trees."""
        return self._tree_total

    @property
    def trees(self) -> int:
        """Documents holding a tree."""
        return len(self._trees)

    def set_text(self, uri: str, cost: int) -> None:
        """Note a document's text size; then drop trees until the total is within the limit."""
        self._text_total += cost - self._texts.get(uri, 0)
        self._texts[uri] = cost
        self._fit(keep=None)

    def texts_over(self) -> bool:
        """The texts alone are over the limit (the store then closes the oldest documents)."""
        return self._text_total > self.limit

    def admit_tree(self, doc: HasTree, cost: int) -> bool:
        """May `doc` hold a tree of `cost` bytes? Yes if it fits beside the texts once the trees
        of documents edited longer ago are dropped (they are dropped then); no otherwise."""
        self.release_tree(doc.uri)
        if cost > self.limit - self._text_total:
            return False
        self._trees[doc.uri] = (cost, doc)
        self._tree_total += cost
        self._fit(keep=doc.uri)
        return doc.uri in self._trees

    def resize_tree(self, doc: HasTree, cost: int) -> bool:
        """`doc` was edited: its tree is now `cost` bytes and it is the most recent. False when it
        no longer fits (then it has to be dropped by the caller, and is forgotten here)."""
        old = self._trees.get(doc.uri)
        if old is None:
            return self.admit_tree(doc, cost)
        self._tree_total += cost - old[0]
        self._trees[doc.uri] = (cost, doc)
        self._trees.move_to_end(doc.uri)
        if cost > self.limit - self._text_total:
            self.release_tree(doc.uri)
            return False
        self._fit(keep=doc.uri)
        return True

    def forget(self, uri: str) -> None:
        """A document was closed or dropped: its text and tree no longer count."""
        self._text_total -= self._texts.pop(uri, 0)
        self.release_tree(uri)

    def release_tree(self, uri: str) -> None:
        """The document holds no tree any more."""
        entry = self._trees.pop(uri, None)
        if entry is not None:
            self._tree_total -= entry[0]

    def _fit(self, keep: str | None) -> None:
        """Drop the trees of the documents edited longest ago until texts + trees fit."""
        while self._trees and self._text_total + self._tree_total > self.limit:
            uri = next(iter(self._trees))
            if uri == keep:
                if len(self._trees) == 1:
                    return
                self._trees.move_to_end(uri)
                continue
            cost, doc = self._trees.pop(uri)
            self._tree_total -= cost
            self.dropped += 1
            log.info("memory budget: dropping the syntax tree of %s (edited longest ago)", uri)
            doc.drop_tree()
