"""A session's code actions: offered at once from the tree, resolved through `complete`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moe_lsp.prompts.actions import Action, ActionKind, Diagnostic, adds_no_error, find_actions
from moe_lsp.prompts.builder import Task
from moe_lsp.prompts.profiles import Kind

from .completion import Wait, complete
from .documents import Position, Snapshot

if TYPE_CHECKING:
    from .session import Session

MAX_DIAGNOSTICS = 20
"""Diagnostics of one codeAction request that get a fix each."""
MAX_INSTRUCTION = 2000
"""Longest rewrite instruction kept."""


class ActionError(Exception):
    """An action that cannot be resolved; its text is shown to the user as it is."""


@dataclass(frozen=True)
class Offer:
    """An action as listed, with what `resolve` needs to find it again."""

    action: Action
    uri: str
    version: int
    start: Position
    end: Position
    diagnostic: tuple[Position, Position, str] | None = None

    def data(self) -> dict[str, Any]:
        """The action's `data` on the wire (sent back by the client with codeAction/resolve)."""
        out: dict[str, Any] = {
            "uri": self.uri,
            "version": self.version,
            "kind": str(self.action.kind),
            "title": self.action.title,
            "range": [list(self.start), list(self.end)],
        }
        if self.diagnostic is not None:
            start, end, message = self.diagnostic
            out["diagnostic"] = [list(start), list(end), message]
        return out


@dataclass(frozen=True)
class Resolved:
    """An action's edit: replace `start`..`end` of document `version` with `new_text`."""

    uri: str
    version: int
    start: Position
    end: Position
    new_text: str


def offers(
    session: Session,
    uri: str,
    start: Position,
    end: Position,
    diagnostics: list[tuple[Position, Position, str]],
    instruction: str = "",
) -> list[Offer]:
    """The actions that apply at a range, found without the model (answered at once)."""
    doc = session.documents.get(uri)
    if doc is None:
        return []
    enc = session.documents.encoding
    a, b = doc.offset_at(*start, enc), doc.offset_at(*end, enc)
    chosen = diagnostics[:MAX_DIAGNOSTICS]
    found = find_actions(
        doc.tree,
        doc.text,
        min(a, b),
        max(a, b),
        tuple(Diagnostic(doc.offset_at(*s, enc), doc.offset_at(*e, enc), m) for s, e, m in chosen),
        chat=_chat(session),
        instruction=instruction[:MAX_INSTRUCTION],
    )
    out = []
    fixes = iter(chosen)
    for action in found:
        diagnostic = next(fixes, None) if action.kind is ActionKind.FIX else None
        out.append(Offer(action, uri, doc.version, start, end, diagnostic))
    return out


async def resolve(session: Session, data: Any, instruction: str = "") -> Resolved:
    """Run the model for an action listed earlier (its `data`) and check its edit."""
    uri, version, kind, title, start, end, diagnostic = _read(data)
    doc = session.documents.get(uri)
    if doc is None:
        raise ActionError("The document is not open any more.")
    if doc.version != version:
        raise ActionError("The document changed since this action was offered; ask again.")
    diagnostics = [diagnostic] if diagnostic is not None else []
    for offer in offers(session, uri, start, end, diagnostics, instruction):
        if str(offer.action.kind) == kind and offer.action.title == title:
            action = offer.action
            break
    else:
        raise ActionError("This action no longer applies here.")
    snap = Snapshot(uri, version, doc.language_id, action.prompt_text, action.cursor)
    task = Task(str(action.kind), action.mode, action.instruction, action.stop, action.max_tokens)
    outcome = await complete(session, snap, Wait.WHOLE, job=task)
    if outcome is None:
        if not session.is_current(snap):
            raise ActionError("The document changed while the model wrote; ask again.")
        raise ActionError("The model is not ready yet; try again in a moment.")
    if not outcome.text.strip():
        raise ActionError("The model wrote nothing usable here.")
    if not adds_no_error(doc.spec.name if doc.spec.module else "", doc.text, action, outcome.text):
        raise ActionError("The model's edit does not parse in place; it was not applied.")
    enc = session.documents.encoding
    return Resolved(
        uri,
        version,
        doc.position_at(action.start, enc),
        doc.position_at(action.end, enc),
        action.new_text(outcome.text),
    )


def _chat(session: Session) -> bool:
    profile = session.service.profile
    return profile is not None and profile.kind is Kind.CHAT


def _read(
    data: Any,
) -> tuple[str, int, str, str, Position, Position, tuple[Position, Position, str] | None]:
    """The fields of an action's `data`; ActionError for anything malformed."""
    try:
        uri, version, kind, title = data["uri"], data["version"], data["kind"], data["title"]
        (sl, sc), (el, ec) = data["range"]
        diagnostic = None
        if data.get("diagnostic") is not None:
            (dsl, dsc), (del_, dec), message = data["diagnostic"]
            diagnostic = ((int(dsl), int(dsc)), (int(del_), int(dec)), str(message))
        ok = isinstance(uri, str) and isinstance(title, str) and kind in set(ActionKind)
        if not ok or isinstance(version, bool) or not isinstance(version, int):
            raise ValueError
        return uri, version, kind, title, (int(sl), int(sc)), (int(el), int(ec)), diagnostic
    except (KeyError, TypeError, ValueError) as err:
        raise ActionError("This code action's data is not one this server made.") from err
