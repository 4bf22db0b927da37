"""Reading a generation: the hot-streak form of a prompt, the first answer and the pieces after."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from .first_cut import group_cut
from .postprocess import StopCheck, finish, strip_heal
from .prompt import Mode, Prompt


class Progress(Protocol):
    """What a reader needs of a running generation."""

    @property
    def raw(self) -> str:
        """Text generated so far, before clean-up."""
        ...

    @property
    def finished(self) -> bool:
        """The engine request is over."""
        ...

    @property
    def truncated(self) -> bool:
        """It ended on a limit (tokens, time, cancel, error), not because the text was whole."""
        ...


@dataclass(frozen=True)
class Plan:
    """What the engine runs for a request, and the rules of the first answer."""

    answer: Prompt
    """The request's own prompt: its rules decide the first answer."""
    streamed: Prompt
    """The prompt the engine runs: `answer`, or its hot-streak extension (the same token ids,
    multi-line rules and more tokens, so the lines after the first one come with it)."""

    @property
    def extended(self) -> bool:
        """The engine writes past the first answer (a hot streak)."""
        return self.streamed is not self.answer


def plan(prompt: Prompt, streak_tokens: int) -> Plan:
    """The plan for `prompt`: a single-line completion at a line's end (nothing right of the
    cursor) becomes a hot streak of up to `streak_tokens` tokens (0: never)."""
    if (
        streak_tokens > 0
        and prompt.mode is Mode.SINGLE_LINE
        and prompt.kind != "chat"
        and not prompt.line_suffix.strip()
    ):
        tokens = max(prompt.max_tokens, streak_tokens)
        streamed = replace(prompt, mode=Mode.MULTI_LINE, opens_block=False, max_tokens=tokens)
        return Plan(prompt, streamed)
    return Plan(prompt, prompt)


class Reader:
    """Turns a generation's raw text into its first answer, the whole text so far, and the
    next piece for a cursor that moved along it. Also says when the engine may stop."""

    def __init__(self, plan: Plan, *, syntax_stop: bool = True, first_cut_chars: int = 0) -> None:
        self.plan = plan
        self.first_cut_chars = first_cut_chars
        """A hot streak's line still being written is answered early, cut after its last whole
        token group, once it holds this many characters (0: only whole lines)."""
        self.stop: StopCheck | None = StopCheck(plan.streamed, syntax=True) if syntax_stop else None
        """When the streamed completion is whole (the engine stops); None: at the token limit."""
        self._line = StopCheck(plan.answer, syntax=False) if plan.extended else None

    # -- the first answer ------------------------------------------------------------------------
    def first_ready(self, gen: Progress, budget_passed: bool) -> bool:
        """True once the first answer can be given: the line is whole (hot streak), the
        generation ended, or the time budget passed with whole lines to show."""
        if gen.finished:
            return True
        if self._line is not None and self._line.done(gen.raw):
            return True
        if self._early(gen):
            return True
        return budget_passed and bool(self.text(gen))

    def _early(self, gen: Progress) -> str:
        """The first line so far cut after a whole token group ('' when it does not apply)."""
        if self._line is None or self.first_cut_chars <= 0 or gen.finished:
            return ""
        if self._line.done(gen.raw):
            return ""
        line = strip_heal(gen.raw, self.plan.answer.heal) or ""
        if "\n" in line:
            return ""
        return group_cut(line, self.first_cut_chars)

    def first_answer(self, gen: Progress) -> str:
        """The text to show first."""
        if self.plan.extended:
            early = self._early(gen)
            if early:
                return early
            return finish(gen.raw, self.plan.answer, truncated=gen.finished and gen.truncated)
        return self.text(gen)

    def lines_so_far(self, gen: Progress) -> str:
        """Whole lines of a multi-line completion still being written ('' once it ended)."""
        return "" if gen.finished else finish(gen.raw, self.plan.streamed, truncated=True)

    def preview(self, gen: Progress, shown: str) -> str:
        """The ghost text to draw while it streams: the first answer until one was shown,
        then the whole text; the line being written while nothing is whole yet."""
        text = self.first_answer(gen) if not shown else self.text(gen)
        if not gen.finished and not text:
            text = finish(gen.raw, self.plan.answer)
        return text

    # -- later requests ---------------------------------------------------------------------------
    def text(self, gen: Progress) -> str:
        """The whole cleaned completion so far (whole, sound lines while still generating)."""
        return finish(gen.raw, self.plan.streamed, truncated=not gen.finished or gen.truncated)

    def next_piece(self, gen: Progress, typed: str) -> tuple[str, bool] | None:
        """The text to show after `typed` (typed at the anchor since), and whether it is whole;
        None when the generation cannot serve it (the user typed something else).

        One line at a time: the rest of the current line, or, at a line's end (the user
        accepted it, maybe pressed Enter), the next line."""
        text = self.text(gen)
        if not text.startswith(typed):
            return None if (gen.finished or not self._may_still(gen, typed)) else ("", False)
        rest = text[len(typed) :]
        start = len(rest) - len(rest.lstrip("\n")) if rest.startswith("\n") else 0
        end = rest.find("\n", start)
        if end >= 0:
            return rest[:end], True
        return rest, gen.finished

    def _may_still(self, gen: Progress, typed: str) -> bool:
        """`typed` goes beyond the whole lines so far but agrees with the raw text streaming."""
        heal = self.plan.streamed.heal
        body = gen.raw[len(heal) :] if gen.raw.startswith(heal) else ""
        return body.startswith(typed) or typed.startswith(body)
