"""A session's next-edit suggestions: its edit log, and predictions through `complete`."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moe_lsp.prompts.builder import Task
from moe_lsp.prompts.next_edit import END, EditLog, NextEdit, prompt_text, to_edit
from moe_lsp.prompts.prompt import Mode
from moe_lsp.prompts.soundness import error_count

from .completion import Wait, complete
from .documents import Position, Snapshot

if TYPE_CHECKING:
    from .session import Session

MAX_LOGGED_DOCUMENTS = 64
"""Documents whose recent edits are kept (least recently edited dropped first)."""
MAX_LOGGED_CHARS = 512 * 1024
"""Documents longer than this keep no edit log (diffing them at each keystroke costs too much)."""
INSTRUCTION = (
    "Rewrite the code around the last edit with the edit that should come next (for example "
    "the same rename, parameter or call change further on). Reply with that code only."
)


@dataclass(frozen=True)
class Suggestion:
    """A predicted edit of document `version`: replace `start`..`end` with `new_text`."""

    uri: str
    version: int
    start: Position
    end: Position
    new_text: str


class EditLogs:
    """Every open document's recent edits, bounded."""

    def __init__(self) -> None:
        self._logs: OrderedDict[str, EditLog] = OrderedDict()
        self.last: dict[str, Suggestion] = {}
        """The latest suggestion per document (served as a ranged inline item)."""

    def record(
        self, uri: str, old: str, new: str, first_line: int = 0, size: int | None = None
    ) -> None:
        """Note the edit that turned `old` into `new`: whole texts, or the lines the edit
        touched from 0-based `first_line` (then `size` is the document's new length)."""
        if (size if size is not None else max(len(old), len(new))) > MAX_LOGGED_CHARS:
            self.forget(uri)
            return
        log = self._logs.pop(uri, None) or EditLog()
        log.record(old, new, first_line)
        self._logs[uri] = log
        while len(self._logs) > MAX_LOGGED_DOCUMENTS:
            dropped, _ = self._logs.popitem(last=False)
            self.last.pop(dropped, None)

    def hunks(self, uri: str) -> list:
        log = self._logs.get(uri)
        return list(log.hunks) if log is not None else []

    def forget(self, uri: str) -> None:
        self._logs.pop(uri, None)
        self.last.pop(uri, None)


async def predict(session: Session, uri: str) -> Suggestion | None:
    """The edit that should follow the document's recent ones, or None (no recent edit, the
    model changed nothing, or its edit would add a syntax error)."""
    doc = session.documents.get(uri)
    if doc is None:
        return None
    hunks = session.edit_logs.hunks(uri)
    comment = doc.spec.line_comment or "#"
    made = prompt_text(session.display_path(uri), doc.text, hunks, comment)
    if made is None:
        return None
    text, start, end = made
    snap = Snapshot(uri, doc.version, doc.language_id, text, len(text))
    window_chars = end - start
    task = Task(
        "next-edit",
        Mode.MULTI_LINE,
        INSTRUCTION,
        stop=(END,),
        max_tokens=max(32, min(768, window_chars // 2 + 32)),
        verbatim=True,
    )
    outcome = await complete(session, snap, Wait.WHOLE, job=task)
    if outcome is None or not session.is_current(snap):
        return None
    if outcome.finish_reason != "stop":
        return None  # cut off by a limit: a partial window would read as deleting its rest
    edit = to_edit(doc.text, start, end, outcome.text, hunks)
    if edit is None or not _sound(doc.spec.name if doc.spec.module else "", doc.text, edit):
        return None
    enc = session.documents.encoding
    found = Suggestion(
        uri,
        doc.version,
        doc.position_at(edit.start, enc),
        doc.position_at(edit.end, enc),
        edit.new_text,
    )
    session.edit_logs.last[uri] = found
    return found


def _sound(language: str, text: str, edit: NextEdit) -> bool:
    if not language:
        return True
    edited = text[: edit.start] + edit.new_text + text[edit.end :]
    return error_count(language, edited) <= error_count(language, text)


def inline_at(session: Session, uri: str, version: int, cursor: Position) -> Suggestion | None:
    """The latest suggestion, when it is for this version and on the cursor's line at or
    after the cursor (an inline item with a range can show it there)."""
    found = session.edit_logs.last.get(uri)
    if found is None or found.version != version:
        return None
    if found.start[0] != cursor[0] or found.end[0] != cursor[0] or found.start < cursor:
        return None
    return found
