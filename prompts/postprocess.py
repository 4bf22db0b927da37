"""Clean-up of streamed completion text: healing, where to stop, text that repeats the suffix."""

from __future__ import annotations

import re

from .chat_infill import reasoning_capped
from .profiles import extract_infill
from .prompt import Mode, Prompt
from .soundness import can_check, closes_scope, sound_cut

MAX_LINES = 8
"""Most lines a multi-line completion may hold."""
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_OPENERS = {v: k for k, v in _CLOSERS.items()}


def strip_heal(raw: str, heal: str) -> str | None:
    """`raw` without the healed text; None while `raw` is still inside it, '' on a mismatch."""
    if raw.startswith(heal):
        return raw[len(heal) :]
    if heal.startswith(raw):
        return None
    return ""


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def cut(text: str, prompt: Prompt) -> tuple[str, bool]:
    """Cut `text` (healing removed) where the completion should end; also say if it has ended."""
    lines = text.split("\n")
    if prompt.mode is Mode.SINGLE_LINE:
        return lines[0], len(lines) > 1
    base = len(prompt.indent)
    kept: list[str] = [lines[0]]
    has_text = bool(lines[0].strip())
    for i, line in enumerate(lines[1:], start=1):
        complete = i < len(lines) - 1
        if not line.strip():
            if has_text and complete:
                return "\n".join(kept), True
            kept.append(line)
            continue
        if complete or len(line) > len(_indent_of(line)):
            width = len(_indent_of(line))
            ended = width < base or (prompt.opens_block and width <= base and has_text)
            if ended:
                return "\n".join(kept).rstrip(" \t"), True
        kept.append(line)
        has_text = True
        if sum(1 for k in kept if k.strip()) > MAX_LINES:
            return "\n".join(kept[:-1]), True
    return "\n".join(kept), False


def unmatched_closers(text: str) -> int:
    """How many closing brackets in `text` have no opener before them in `text`."""
    depth: list[str] = []
    unmatched = 0
    for ch in text:
        if ch in _OPENERS:
            depth.append(ch)
        elif ch in _CLOSERS:
            if depth and depth[-1] == _CLOSERS[ch]:
                depth.pop()
            else:
                unmatched += 1
    return unmatched


def trim_suffix_overlap(text: str, line_suffix: str) -> str:
    """Drop the end of a one-line `text` that repeats what is already right of the cursor."""
    right = line_suffix.strip()
    if not right or not text:
        return text
    body = text.rstrip()
    if len(right) > 1 and body.endswith(right) and body != right:
        return body[: -len(right)].rstrip() if right[0] not in _CLOSERS else body[: -len(right)]
    extra = unmatched_closers(body)
    k = 0
    while extra > 0 and k < len(right) and body.endswith(right[: k + 1]) and right[k] in _CLOSERS:
        k += 1
        extra -= 1
    # body ends with the first k characters of `right`, all of them closers the body never opened
    if k and body.endswith(right[:k]):
        return body[:-k]
    return text


def drop_repeated_lines(text: str, next_lines: str) -> str:
    """Drop trailing lines of a multi-line `text` that repeat the document's next lines."""
    following = [ln.strip() for ln in next_lines.split("\n") if ln.strip()]
    if not following:
        return text
    lines = text.split("\n")
    dropped = False
    while len(lines) > 1 and lines[-1].strip() and lines[-1].strip() in following[:1]:
        lines.pop()
        dropped = True
    # a header left without its body (`else:` whose body was the repeated line) goes too
    while dropped and len(lines) > 1 and lines[-1].rstrip().endswith((":", "{")):
        lines.pop()
    return "\n".join(lines)


_REPEAT = re.compile(r"(\S.+?)\1{3,}", re.DOTALL)


def is_repetitive(text: str) -> bool:
    """A degenerate completion: a piece repeated 4+ times in a row, or a line 3+ times."""
    if _REPEAT.search(text.strip()):
        return True
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    return any(lines.count(ln) >= 3 for ln in set(lines))


def trim_repetition(text: str) -> str:
    """Cut a multi-line completion where it starts looping: at a line equal to the one before
    it, or at the third time a line appears."""
    lines = text.split("\n")
    seen: dict[str, int] = {}
    previous = None
    for i, line in enumerate(lines):
        key = line.strip()
        if key:
            seen[key] = seen.get(key, 0) + 1
            if key == previous or seen[key] >= 3:
                return "\n".join(lines[:i])
            previous = key
    return text


def indent_unit(text: str) -> str:
    """The document's indentation unit: a tab, or the most common width of space indents."""
    tabs = spaces = 0
    widths: dict[int, int] = {}
    previous = 0
    for line in text.split("\n")[-400:]:
        stripped = line.lstrip(" \t")
        if not stripped:
            continue
        lead = line[: len(line) - len(stripped)]
        if lead.startswith("\t"):
            tabs += 1
        elif lead:
            spaces += 1
        width = len(lead.expandtabs(4))
        step = abs(width - previous)
        if step and not lead.startswith("\t"):
            widths[step] = widths.get(step, 0) + 1
        previous = width
    if tabs > spaces:
        return "\t"
    if not widths:
        return "    "
    return " " * max(widths, key=lambda w: (widths[w], -w))


def match_indentation(text: str, unit: str) -> str:
    """Re-indent the completion's lines (after the first) with the document's unit."""
    if not unit or "\n" not in text:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        stripped = line.lstrip(" \t")
        lead = line[: len(line) - len(stripped)]
        if unit == "\t" and lead and "\t" not in lead:
            lead = "\t" * (len(lead) // 4) + " " * (len(lead) % 4)
        elif unit != "\t" and "\t" in lead:
            lead = lead.replace("\t", unit)
        out.append(lead + stripped)
    return "\n".join(out)


def sound_prefix(text: str) -> str:
    """A multi-line completion cut short (token limit, timeout): keep whole lines only, and
    end where the brackets the completion opened are closed again."""
    lines = text.split("\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last line was still being written
    depth = 0
    keep = 0
    for i, line in enumerate(lines):
        for ch in line:
            if ch in _OPENERS:
                depth += 1
            elif ch in _CLOSERS:
                depth -= 1
        if depth <= 0:
            keep = i + 1
    return "\n".join(lines[:keep]) if keep else ""


def finish(raw: str, prompt: Prompt, *, truncated: bool = False) -> str:
    """The text to insert at the cursor, from the raw engine output; '' means nothing to show.

    `truncated`: the engine stopped on a limit, not because the completion was whole."""
    if prompt.verbatim:
        if prompt.kind == "chat":
            raw = extract_infill(raw, prompt.infill_prefix, prompt.infill_suffix)
        return strip_heal(raw, prompt.heal) or ""
    if prompt.kind == "chat":
        raw = extract_infill(raw, prompt.infill_prefix, prompt.infill_suffix)
    text = strip_heal(raw, prompt.heal)
    if not text:
        return ""
    text, ended = cut(text, prompt)
    syntax = can_check(prompt.language)
    if prompt.mode is Mode.SINGLE_LINE:
        text = trim_suffix_overlap(text, prompt.line_suffix)
        if truncated and not ended and syntax:
            # the line was cut off by a limit: show it only if it is a whole statement
            text = sound_cut(prompt.language, prompt.before, text, prompt.after)
    else:
        text = trim_repetition(text)
        if truncated and not ended:
            if syntax:
                whole = text.rsplit("\n", 1)[0] if "\n" in text else ""
                text = sound_cut(prompt.language, prompt.before, whole, prompt.after)
            else:
                text = sound_prefix(text)
        text = drop_repeated_lines(text, prompt.next_lines)
        text = match_indentation(text, prompt.indent_unit)
    text = text.rstrip()
    if not text.strip() or is_repetitive(text):
        return ""
    return text


def is_done(raw: str, prompt: Prompt) -> bool:
    """True once the streamed `raw` text holds a whole completion, so the engine can stop
    (line and indentation rules only; `StopCheck` adds the tree-sitter check)."""
    return StopCheck(prompt, syntax=False).done(raw)


class StopCheck:
    """Decides, as tokens stream, when a completion is whole: its line (single-line), or its
    block (multi-line: a line back at the outer indentation, a blank line after text, a loop,
    or tree-sitter seeing the body closed). The tree-sitter check runs once per new line."""

    def __init__(self, prompt: Prompt, *, syntax: bool = True) -> None:
        self.prompt = prompt
        self.syntax = syntax and prompt.mode is Mode.MULTI_LINE and can_check(prompt.language)
        self._lines = 0
        self.by_syntax = False
        """The last `done` was decided by tree-sitter (for stats)."""

    def done(self, raw: str) -> bool:
        """True once `raw` (all text so far) is a whole completion."""
        prompt = self.prompt
        if prompt.kind == "chat":  # whole at its end (its fences), or reasoning past the cap
            return reasoning_capped(raw)
        if prompt.verbatim:
            return False  # only whole at its end (a window's stop)
        text = strip_heal(raw, prompt.heal)
        if text is None:
            return False
        if text == "":
            return raw != "" and not prompt.heal.startswith(raw)
        body, ended = cut(text, prompt)
        if ended:
            return True
        # A looping model: stop as soon as the loop shows (the last line may still be growing).
        complete = body.rsplit("\n", 1)[0] if "\n" in body else ""
        if trim_repetition(complete) != complete:
            return True
        if self.syntax:
            lines = text.count("\n")
            if lines > self._lines:
                self._lines = lines
                whole = text[: text.rfind("\n") + 1]
                if closes_scope(prompt.language, prompt.before, whole):
                    self.by_syntax = True
                    return True
        return False
