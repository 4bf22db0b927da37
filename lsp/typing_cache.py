"""Typing through: when the user types what the ghost text shows, serve the rest from memory."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_ENTRIES = 64
"""Documents remembered (one shown completion each)."""
PREFIX_TAIL = 4096
"""Characters of text before the cursor compared to recognise the same place."""


@dataclass(frozen=True)
class Shown:
    """A completion shown at a cursor: the text around the cursor then, and what was shown."""

    offset: int
    """Cursor offset when it was shown."""
    before: str
    """The last PREFIX_TAIL characters before the cursor."""
    after: str
    """Text after the cursor (to the end of the document)."""
    text: str
    """The completion shown."""


class TypingCache:
    """The last completion shown per document, bounded to MAX_ENTRIES documents."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._shown: OrderedDict[str, Shown] = OrderedDict()

    def __len__(self) -> int:
        return len(self._shown)

    def remember(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        """Record that `text` was shown between `prefix` and `suffix`."""
        self._shown.pop(uri, None)
        if not text:
            return
        self._shown[uri] = Shown(len(prefix), prefix[-PREFIX_TAIL:], suffix, text)
        while len(self._shown) > self.max_entries:
            self._shown.popitem(last=False)

    def forget(self, uri: str) -> None:
        """Drop what is remembered for `uri` (closed document)."""
        self._shown.pop(uri, None)

    def shown(self, uri: str) -> tuple[int, str] | None:
        """Where the last completion of `uri` was shown (cursor offset) and its text."""
        entry = self._shown.get(uri)
        return None if entry is None else (entry.offset, entry.text)

    def lookup(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The rest of the shown completion if the user typed a start of it, else None."""
        shown = self._shown.get(uri)
        if shown is None or suffix != shown.after:
            return None
        # The user typed `typed_len` characters at the cursor: exactly one candidate to check.
        typed_len = len(prefix) - shown.offset
        if not 0 < typed_len < len(shown.text):
            return None
        if not prefix.endswith(shown.before + shown.text[:typed_len]):
            return None
        rest = shown.text[typed_len:]
        return rest if rest.strip() else None
