"""Constrained token healing: which vocabulary tokens may start a completion of the healed text."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from weakref import WeakKeyDictionary

MAX_ALLOWED = 20000
"""More tokens than this start with the healed text (a lone space): no constraint is sent."""


class HealIndex:
    """The vocabulary's token texts, sorted, to find every token that starts with a string."""

    def __init__(self, vocabulary: Iterable[tuple[int, str]]) -> None:
        pairs = sorted((text, tid) for tid, text in vocabulary if text and "\ufffd" not in text)
        self._texts = [t for t, _ in pairs]
        self._ids = [i for _, i in pairs]

    def __len__(self) -> int:
        return len(self._texts)

    def starting_with(self, prefix: str) -> tuple[int, ...]:
        """Ids of the tokens whose text starts with `prefix` (all of them for '')."""
        lo = bisect_left(self._texts, prefix)
        hi = bisect_left(self._texts, prefix + "\U0010ffff", lo)
        return tuple(self._ids[lo:hi])

    def prefixes_of(self, text: str) -> tuple[int, ...]:
        """Ids of the tokens whose text is a proper, non-empty start of `text`."""
        found = []
        for end in range(1, len(text)):
            i = bisect_left(self._texts, text[:end])
            while i < len(self._texts) and self._texts[i] == text[:end]:
                found.append(self._ids[i])
                i += 1
        return tuple(found)


_INDEXES: WeakKeyDictionary[object, HealIndex] = WeakKeyDictionary()


def allowed_first_tokens(tok: object, heal: str) -> tuple[int, ...]:
    """Tokens the completion of a prompt healed by `heal` may start with: those that extend
    it, and those that are a start of it (the model's own split: "\n   " then " return" for a
    healed "\n    "). () for no constraint: nothing healed, a tokenizer without a
    vocabulary listing, or too many to be worth it."""
    if not heal:
        return ()
    vocabulary = getattr(tok, "vocabulary", None)
    if vocabulary is None:
        return ()
    index = _INDEXES.get(tok)
    if index is None:
        index = HealIndex(vocabulary())
        _INDEXES[tok] = index
    ids = index.starting_with(heal)
    if not 0 < len(ids) <= MAX_ALLOWED:
        return ()
    return index.prefixes_of(heal) + ids
