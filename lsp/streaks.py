"""Hot streaks: a generation that goes on after its first answer and serves the next requests."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from moe_lsp.prompts.reader import Reader

from .generation import Generation

MAX_STREAKS = 64
"""Documents with a streak kept (one each); the oldest is cancelled past this."""
BEFORE_CHARS = 4096
"""Characters before the anchor compared to recognise the same place."""
AFTER_HEAD = 4096
"""Characters after the anchor compared (with the suffix's length) to recognise it."""


@dataclass
class Streak:
    """A generation anchored at a cursor: what was before and after it, and what was shown.
    What it means as text is the reader's (prompts/reader.py) to say."""

    gen: Generation
    reader: Reader
    offset: int
    before: str
    after_len: int
    after_head: str
    shown: str = ""
    """What was shown of it so far ('' while nobody was answered from it)."""
    prepared: Any = None
    """The prepared prompt it came from (timings for stats)."""
    adopted: bool = False
    """A later request's text agreed with it (it serves that request)."""

    @classmethod
    def at(cls, gen: Generation, reader: Reader, prefix: str, suffix: str) -> Streak:
        """A streak for `gen`, anchored between `prefix` and `suffix`."""
        return cls(
            gen, reader, len(prefix), prefix[-BEFORE_CHARS:], len(suffix), suffix[:AFTER_HEAD]
        )

    def first_ready(self, budget_passed: bool) -> bool:
        """True once the first answer can be given (see `Reader.first_ready`)."""
        return self.reader.first_ready(self.gen, budget_passed)

    def first_answer(self) -> str:
        """The text to show first."""
        return self.reader.first_answer(self.gen)

    def text(self) -> str:
        """The whole cleaned completion so far."""
        return self.reader.text(self.gen)

    def typed(self, prefix: str, suffix: str) -> str | None:
        """What was typed at the anchor since (None: the document around it changed)."""
        if len(suffix) != self.after_len or not suffix.startswith(self.after_head):
            return None
        if len(prefix) < self.offset or not prefix.startswith(
            self.before, self.offset - len(self.before)
        ):
            return None
        return prefix[self.offset :]

    def next_piece(self, typed: str) -> tuple[str, bool] | None:
        """The text to show after `typed`, and whether it is whole (see `Reader.next_piece`)."""
        return self.reader.next_piece(self.gen, typed)


class Streaks:
    """At most one streak per document, bounded to MAX_STREAKS documents (LRU)."""

    def __init__(self, max_entries: int = MAX_STREAKS) -> None:
        self.max_entries = max_entries
        self._by_uri: OrderedDict[str, Streak] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_uri)

    def get(self, uri: str) -> Streak | None:
        """The streak of `uri`, if any."""
        return self._by_uri.get(uri)

    def put(self, uri: str, streak: Streak) -> None:
        """Make `streak` the one of `uri` (an older one is cancelled)."""
        old = self._by_uri.pop(uri, None)
        if old is not None and old is not streak:
            old.gen.cancel()
        self._by_uri[uri] = streak
        while len(self._by_uri) > self.max_entries:
            _, dropped = self._by_uri.popitem(last=False)
            dropped.gen.cancel()

    def drop(self, uri: str) -> None:
        """Cancel and forget the streak of `uri`."""
        old = self._by_uri.pop(uri, None)
        if old is not None:
            old.gen.cancel()

    def waiting(self) -> int:
        """Generations the engine has not yet given a token (queued or in prefill)."""
        return sum(
            1 for s in self._by_uri.values() if not s.gen.finished and s.gen.first_token is None
        )

    def running(self) -> int:
        """Streaks whose engine request is still going."""
        return sum(1 for s in self._by_uri.values() if not s.gen.finished)

    def clear(self) -> None:
        """Cancel every streak (shutdown)."""
        for uri in list(self._by_uri):
            self.drop(uri)
