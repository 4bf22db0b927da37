"""Hot streaks: a generation that goes on after its first answer and serves the next requests."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from moe_lsp.prompts.postprocess import StopCheck, finish
from moe_lsp.prompts.prompt import Prompt

from .generation import Generation

MAX_STREAKS = 64
"""Documents with a streak kept (one each); the oldest is cancelled past this."""
BEFORE_CHARS = 4096
"""Characters before the anchor compared to recognise the same place."""
AFTER_HEAD = 4096
"""Characters after the anchor compared (with the suffix's length) to recognise it."""


@dataclass
class Streak:
    """A generation anchored at a cursor: what was before and after it, and what was shown."""

    gen: Generation
    line_prompt: Prompt
    """Rules for the first answer (the single-line prompt of a hot streak; else `gen.prompt`)."""
    offset: int
    before: str
    after_len: int
    after_head: str
    shown: str = ""
    """What was shown of it so far ('' while nobody was answered from it)."""
    prepared: Any = None
    """The prepared prompt it came from (timings for stats)."""
    _ready_check: StopCheck | None = field(default=None, repr=False)

    @classmethod
    def at(cls, gen: Generation, line_prompt: Prompt, prefix: str, suffix: str) -> Streak:
        """A streak for `gen`, anchored between `prefix` and `suffix`."""
        return cls(
            gen, line_prompt, len(prefix), prefix[-BEFORE_CHARS:], len(suffix), suffix[:AFTER_HEAD]
        )

    # -- the first answer ------------------------------------------------------------------------
    def first_ready(self, budget_passed: bool) -> bool:
        """True once the first answer can be given: the line is whole (hot streak), the
        generation ended, or the time budget passed with whole lines to show."""
        gen = self.gen
        if gen.finished:
            return True
        if self.line_prompt is not gen.prompt:
            if self._ready_check is None:
                self._ready_check = StopCheck(self.line_prompt, syntax=False)
            if self._ready_check.done(gen.raw):
                return True
        return budget_passed and bool(self.text())

    def first_answer(self) -> str:
        """The text to show first."""
        gen = self.gen
        if self.line_prompt is not gen.prompt:
            return finish(gen.raw, self.line_prompt, truncated=gen.finished and gen.truncated)
        return self.text()

    # -- later requests ---------------------------------------------------------------------------
    def text(self) -> str:
        """The whole cleaned completion so far (whole, sound lines while still generating)."""
        gen = self.gen
        return finish(gen.raw, gen.prompt, truncated=not gen.finished or gen.truncated)

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
        """The text to show after `typed`, and whether it is whole; None when the streak cannot
        serve it (the user typed something else).

        One line at a time: the rest of the current line, or, at a line's end (the user
        accepted it, maybe pressed Enter), the next line."""
        text = self.text()
        if not text.startswith(typed):
            return None if (self.gen.finished or not self._may_still(typed)) else ("", False)
        rest = text[len(typed) :]
        start = len(rest) - len(rest.lstrip("\n")) if rest.startswith("\n") else 0
        end = rest.find("\n", start)
        if end >= 0:
            return rest[:end], True
        if self.gen.finished:
            return rest, True
        return rest, False

    def _may_still(self, typed: str) -> bool:
        """`typed` goes beyond the whole lines so far but agrees with the raw text streaming."""
        raw = self.gen.raw
        heal = self.gen.prompt.heal
        body = raw[len(heal) :] if raw.startswith(heal) else ""
        return body.startswith(typed) or typed.startswith(body)


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

    def running(self) -> int:
        """Streaks whose engine request is still going."""
        return sum(1 for s in self._by_uri.values() if not s.gen.finished)

    def clear(self) -> None:
        """Cancel every streak (shutdown)."""
        for uri in list(self._by_uri):
            self.drop(uri)
