"""Next-edit suggestions: recent edits as hunks, the prompt text, the new window as one edit."""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass

MAX_HUNKS = 8
"""Recent edits kept per document (older ones are dropped)."""
HUNK_CHARS = 400
"""Longest before/after text of one kept edit."""
WINDOW_LINES = 8
"""Lines above and below the last edit the model rewrites."""
MAX_EDIT_LINES = 4
"""Most lines one suggested edit may replace or write (more is a rewrite, not a next edit)."""
END = "<|end of window|>"
PROMPT_MARKERS = (
    "Recent edits in ",
    "The code around the last edit:",
    "with the edit that should come next:",
    END,
)
"""Texts of the prompt itself: a suggestion holding one is the model echoing its prompt."""
"""Written after the window in the prompt; the model stops when it writes it."""


@dataclass(frozen=True)
class Hunk:
    """One edit as whole lines: `before` became `after`, starting at 0-based `line`."""

    line: int
    before: str
    after: str


@dataclass(frozen=True)
class NextEdit:
    """A predicted edit: replace `text[start:end]` with `new_text`."""

    start: int
    end: int
    new_text: str


class EditLog:
    """A document's recent edits, as line hunks; typing on the same lines grows one hunk."""

    def __init__(self, max_hunks: int = MAX_HUNKS) -> None:
        self.hunks: deque[Hunk] = deque(maxlen=max_hunks)

    def record(self, old: str, new: str, first_line: int = 0) -> Hunk | None:
        """Add the edit that turned `old` into `new`: whole texts, or the lines an edit touched
        starting at 0-based `first_line`; the hunk, or None."""
        hunk = line_hunk(old, new)
        if hunk is None:
            return None
        if first_line:
            hunk = Hunk(hunk.line + first_line, hunk.before, hunk.after)
        last = self.hunks[-1] if self.hunks else None
        if last is not None and hunk.line == last.line and hunk.before == last.after:
            hunk = Hunk(last.line, last.before, hunk.after)  # still typing on those lines
            self.hunks.pop()
        if hunk.before == hunk.after:
            return None  # typed and undone
        self.hunks.append(hunk)
        return hunk


def line_hunk(old: str, new: str) -> Hunk | None:
    """The lines that differ between `old` and `new` (common first and last lines left out)."""
    if old == new:
        return None
    a, b = old.split("\n"), new.split("\n")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    before = "\n".join(a[head : len(a) - tail])
    after = "\n".join(b[head : len(b) - tail])
    return Hunk(head, before[:HUNK_CHARS], after[:HUNK_CHARS])


def prompt_text(
    path: str, text: str, hunks: list[Hunk], comment: str = "#"
) -> tuple[str, int, int] | None:
    """The text the model continues (recent edits, the window before), and the window's str
    offsets in `text`; None without a recent edit."""
    if not hunks:
        return None
    lines = text.split("\n")
    last = hunks[-1]
    first = max(0, last.line - WINDOW_LINES)
    stop = min(len(lines), last.line + last.after.count("\n") + 1 + WINDOW_LINES)
    start_offset = sum(len(line) + 1 for line in lines[:first])
    window = "\n".join(lines[first:stop])
    end_offset = start_offset + len(window)
    parts = [f"{comment} {PROMPT_MARKERS[0]}{path or 'this file'}, oldest first:"]
    for h in hunks:
        parts.append(f"{comment} line {h.line + 1}:")
        parts += [f"{comment} - {x}" for x in h.before.split("\n")] if h.before else []
        parts += [f"{comment} + {x}" for x in h.after.split("\n")] if h.after else []
    parts.append(f"{comment} {PROMPT_MARKERS[1]}")
    parts.append(window)
    parts.append(END)
    parts.append(f"{comment} The same code {PROMPT_MARKERS[2]}")
    return "\n".join(parts) + "\n", start_offset, end_offset


def to_edit(text: str, start: int, end: int, written: str, hunks: list[Hunk]) -> NextEdit | None:
    """The model's rewrite of `text[start:end]` as one edit (its first change), or None when
    it changed nothing, or only undid the last edit."""
    # Blank lines at the window's end are not the model's to change (it may drop them).
    end = start + len(text[start:end].rstrip("\n"))
    window = text[start:end]
    written = written.split(END, 1)[0].rstrip("\n")
    if not written.strip() or written == window:
        return None
    old_lines, new_lines = window.split("\n"), written.split("\n")
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        a = start + sum(len(line) + 1 for line in old_lines[:i1])
        b = start + sum(len(line) + 1 for line in old_lines[:i2])
        new = "".join(line + "\n" for line in new_lines[j1:j2])
        if i2 == len(old_lines):  # the window's last line has no newline of its own
            b -= 1
            new = new[:-1] if new.endswith("\n") else new
            if j2 == j1 and i1 > 0:  # a deletion of the last lines takes the newline before
                a -= 1
        b = max(a, min(b, end))
        if hunks and _undoes(text[a:b], new, hunks[-1]):
            return None
        if max(i2 - i1, j2 - j1) > MAX_EDIT_LINES:
            return None  # a rewrite of the window, not the one edit that comes next
        if any(marker in new for marker in PROMPT_MARKERS):
            return None  # the model repeated the prompt's own lines
        return NextEdit(a, b, new)
    return None


def _undoes(old: str, new: str, last: Hunk) -> bool:
    return old.strip() == last.after.strip() and new.strip() == last.before.strip()
