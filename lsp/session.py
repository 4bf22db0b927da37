"""One client's session: its documents, settings, streaks, caches, requests and counters."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from moe_lsp.prompts.builder import Request, Task
from moe_lsp.prompts.crossfile import OpenDocument
from moe_lsp.prompts.syntax import SyntaxTree

from .completion import Outcome, Wait, complete
from .debounce import Debouncer
from .documents import Change, Document, DocumentStore, Position, Snapshot
from .metrics import Latencies
from .next_edit import MAX_LOGGED_CHARS, EditLogs
from .service import COUNTERS, Service
from .settings import ServerSettings
from .streaks import Streak, Streaks
from .typing_cache import TypingCache

log = logging.getLogger(__name__)

GHOST_TEXT_NOTIFICATION = "moe/ghostText"
"""Server -> client (when `completion.streamGhostText` is on): the growing ghost text of the
request in flight, {textDocument: {uri, version}, position, text, done}."""
_WORD_BEFORE = re.compile(r"\w*$")
MAX_INFLIGHT = 16
"""Default cap on a session's completion requests running at once."""

Notify = Callable[[str, Any], None]
"""Sends a notification (method, params) to this session's client."""


class Session:
    """Everything one client owns. The process-wide part (engine, profile) is the `Service`."""

    def __init__(
        self,
        service: Service,
        settings: ServerSettings | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.service = service
        self.settings = settings or ServerSettings()
        self.defaults = self.settings
        """The server's own settings (config file, flags): what a client's `null` puts back."""
        self.budget_ceiling: int | None = None
        """A shared server's memory budget per session: a client may lower it, never raise it."""
        self.documents = DocumentStore(budget_bytes=self.settings.memory_budget_bytes)
        self.streaks = Streaks()
        self.typing = TypingCache()
        self.edit_logs = EditLogs()
        """Recent edits per document (next-edit suggestions)."""
        self.debouncer = self._debouncer()
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        """The request running for each document (latest wins)."""
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.latency = Latencies()
        self.last: dict[str, Any] | None = None
        """Timings of the last completion answered (moe/stats)."""
        self.root_path = ""
        self.notify: Notify = notify or (lambda method, params: None)
        self.closed = False
        self.user = ""
        """Who this session belongs to (the token's user on TCP, else the local user)."""
        self.max_inflight = MAX_INFLIGHT
        """Completion requests running at once; more are answered empty at once."""
        service.sessions.add(self)

    # -- settings -------------------------------------------------------------------------------
    def configure(self, options: Any) -> list[str]:
        """Apply a client's settings: each good value takes effect; one message is returned for
        each value that did not (that setting keeps its current value)."""
        self.settings, problems = self.settings.apply(options, defaults=self.defaults)
        ceiling = self.budget_ceiling
        if ceiling is not None and self.settings.memory_budget_bytes > ceiling:
            problems.append(
                f"memoryBudgetBytes = {self.settings.memory_budget_bytes} is over the shared "
                f"server's limit for a session ({ceiling}); using {ceiling}."
            )
            self.settings = replace(self.settings, memory_budget_bytes=ceiling)
        self.debouncer = self._debouncer()
        if self.documents.budget.limit != self.settings.memory_budget_bytes:
            self.documents.set_budget(self.settings.memory_budget_bytes)
        return problems

    def _debouncer(self) -> Debouncer:
        c = self.settings.completion
        return Debouncer(c.debounce_floor_ms, c.debounce_ceiling_ms)

    # -- requests -------------------------------------------------------------------------------
    async def ghost_text(self, snap: Snapshot) -> str:
        """Ghost text for `snap` (the one completion path, answered early)."""
        outcome = await complete(self, snap, Wait.FIRST)
        text = outcome.text if outcome is not None else ""
        self.typing.remember(snap.uri, snap.prefix, snap.suffix, text)
        if text:
            self.count("shown")
        return text

    async def list_text(
        self, snap: Snapshot, on_partial: Callable[[str], None] | None = None
    ) -> str:
        """The text of a completion-list item for `snap` (the one path, whole answer)."""
        outcome = await complete(self, snap, Wait.WHOLE, on_partial=on_partial)
        return outcome.text if outcome is not None else ""

    def accepted(self, uri: str | None, kind: str) -> None:
        """The user accepted a completion ('inline', 'list' or 'partial')."""
        if kind == "partial":
            self.count("accepted_partially")
            return
        self.count("accepted")
        if uri is not None and kind == "inline":
            self.prefetch_after_accept(uri)

    def prefetch_after_accept(self, uri: str) -> None:
        """The user accepted ghost text: unless a streak already goes on from there, start the
        completion at the end of the accepted text, for the request that will come."""
        doc = self.documents.get(uri)
        if doc is None or uri in self.inflight:
            return  # a request for this document runs: it will serve the next place
        streak = self.streaks.get(uri)
        if streak is not None:
            if not streak.gen.finished or len(streak.text()) > len(streak.shown):
                return  # the streak serves the next line
            offset, shown = streak.offset, streak.shown
        else:
            entry = self.typing.shown(uri)
            if entry is None:
                return
            offset, shown = entry
        end = offset + len(shown)
        if not shown or doc.text[offset:end] != shown:
            return  # not accepted as shown (or not yet applied)
        line, character = doc.position_at(end, self.documents.encoding)
        snap = doc.snapshot(line, character, self.documents.encoding)
        task = asyncio.ensure_future(complete(self, snap, Wait.NONE))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def claim(self, uri: str) -> asyncio.Task[Any] | None:
        """Latest wins: make the current request the one in flight for `uri`; an older one is
        cancelled (answered RequestCancelled, its engine request aborted)."""
        task = asyncio.current_task()
        older = self.inflight.get(uri)
        if older is not None and older is not task and not older.done():
            older.cancel()
            self.count("superseded")
        if task is not None and self.inflight.get(uri) is not task:
            self.inflight[uri] = task
            task.add_done_callback(lambda t: self._release(uri, t))
        return task

    def _release(self, uri: str, task: asyncio.Task[Any]) -> None:
        """A finished request leaves `inflight` (which then holds only running requests)."""
        if self.inflight.get(uri) is task:
            del self.inflight[uri]

    # -- documents ------------------------------------------------------------------------------
    def snapshot(self, uri: str, line: int, character: int) -> Snapshot | None:
        """The document at a position, or None for a document the client did not open."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        return doc.snapshot(line, character, self.documents.encoding)

    def is_current(self, snap: Snapshot) -> bool:
        """The document is still open at `snap`'s version."""
        doc = self.documents.get(snap.uri)
        return doc is not None and doc.version == snap.version

    def change_document(self, uri: str, version: int, changes: list[Change]) -> None:
        """Apply the client's changes, and note the edit (next-edit suggestions). One ranged
        change (a keystroke) is noted from the lines it touched, not by diffing the texts."""
        doc = self.documents.get(uri)
        if doc is None:
            self.documents.change(uri, version, changes)
            return
        touched = self._touched(doc, changes)
        old = doc.text if touched is None else ""
        if not self.documents.change(uri, version, changes):
            return
        doc = self.documents.get(uri)
        if doc is None:
            return
        if touched is None:
            self.edit_logs.record(uri, old, doc.text)
            return
        line, start, before, delta = touched
        after = doc.text[start : start + len(before) + delta]
        self.edit_logs.record(uri, before, after, line, len(doc.text))

    def _touched(self, doc: Document, changes: list[Change]) -> tuple[int, int, str, int] | None:
        """For one ranged change: its first line, that line's start offset, the text of the
        lines it touches, and how much longer the text gets; None otherwise."""
        if len(changes) != 1 or changes[0][0] is None or len(doc.text) > MAX_LOGGED_CHARS:
            return None  # (a document too large for the edit log is not logged: no copies)
        ((sl, sc), (el, ec)), new_text = changes[0]
        enc = self.documents.encoding
        a, b = doc.offset_at(sl, sc, enc), doc.offset_at(el, ec, enc)
        a, b = min(a, b), max(a, b)
        first = doc.text.rfind("\n", 0, a) + 1
        last = doc.text.find("\n", b)
        last = len(doc.text) if last < 0 else last
        line = doc.position_at(first, enc)[0]
        return line, first, doc.text[first:last], len(new_text) - (b - a)

    def close_document(self, uri: str) -> None:
        """The client closed `uri`: forget it and everything made for it."""
        self.documents.close(uri)
        self.typing.forget(uri)
        self.streaks.drop(uri)
        self.edit_logs.forget(uri)

    def request_for(self, snap: Snapshot, task: Task | None = None) -> Request:
        """The context engine's view of a completion request (this session's documents only);
        a code action's `task` comes with a text of its own, parsed here."""
        doc = self.documents.get(snap.uri)
        assert doc is not None
        tree = doc.tree if snap.text is doc.text else SyntaxTree.create(doc.spec, snap.text)
        limit = self.settings.completion.max_context_documents
        others = [
            OpenDocument(d.uri, self.display_path(d.uri), d.language_id, text, version)
            for d in self.documents.recent(limit, exclude=snap.uri)
            for version, text in (d.settled(),)
        ]
        return Request(
            text=snap.text,
            offset=snap.offset,
            path=self.display_path(snap.uri),
            language=doc.spec,
            tree=tree,
            others=others,
            repo_name=PurePosixPath(self.root_path).name if self.root_path else "",
            uri=snap.uri,
            version=snap.version,
            task=task,
        )

    def display_path(self, uri: str) -> str:
        """Path of `uri` relative to the workspace root (as the model should see it)."""
        path = unquote(urlparse(uri).path) if uri.startswith("file:") else uri
        if self.root_path and path.startswith(self.root_path.rstrip("/") + "/"):
            return path[len(self.root_path.rstrip("/")) + 1 :]
        return PurePosixPath(path).name or path

    def word_start(self, snap: Snapshot) -> Position:
        """Start of the identifier the cursor is in (where a completion-list edit begins)."""
        start = snap.offset - len(word_before(snap))
        doc = self.documents.get(snap.uri)
        assert doc is not None
        return doc.position_at(start, self.documents.encoding)

    # -- answers and counters -------------------------------------------------------------------
    def count(self, name: str) -> None:
        """Add one to a counter of this session and to the server's total."""
        self.counts[name] += 1
        self.service.count(name, self.user)

    def fresh(self, snap: Snapshot, outcome: Outcome) -> Outcome | None:
        """`outcome`, recorded, if the document is still at `snap`'s version; else None: the
        document changed while the model worked, and an old version is never answered."""
        if not self.is_current(snap):
            self.count("stale")
            return None
        self.record(outcome)
        return outcome

    def record(self, outcome: Outcome) -> None:
        """Count an answered completion and keep its timings."""
        self.count("answered" if outcome.text else "empty")
        t = outcome.timings
        for latency in (self.latency, self.service.latency):
            latency.add("context", t.prompt_ms)
            latency.add("first_token", t.first_token_ms)
            latency.add("total", t.total_ms)
            if t.first_token_ms is not None:
                latency.add("decode", t.total_ms - t.first_token_ms)
        self.last = {
            "mode": str(outcome.prompt.mode) if outcome.prompt else "none",
            "profile": outcome.prompt.profile if outcome.prompt else None,
            "snippets": outcome.prompt.snippets if outcome.prompt else 0,
            "finishReason": outcome.finish_reason,
            "at": time.time(),
            **{camel(k): v for k, v in asdict(outcome.timings).items()},
        }

    def send_ghost_text(self, snap: Snapshot, streak: Streak, done: bool) -> None:
        """One moe/ghostText notification with the streak's text as it stands."""
        doc = self.documents.get(snap.uri)
        if doc is None or doc.version != snap.version:
            return
        line, character = doc.position_at(snap.offset, self.documents.encoding)
        self.notify(
            GHOST_TEXT_NOTIFICATION,
            {
                "textDocument": {"uri": snap.uri, "version": snap.version},
                "position": {"line": line, "character": character},
                "text": streak.reader.preview(streak.gen, streak.shown),
                "done": done,
            },
        )

    def stats(self) -> dict[str, Any]:
        """Body of the moe/stats response: the engine's state, this session's counters and
        timings, and the server's totals."""
        engine = self.service.host.engine
        engine_stats = asdict(engine.stats()) if engine is not None else None
        return {
            **self.service.stats(),
            "counts": dict(self.counts),
            "latencyMs": self.latency.summary(),
            "engine": {camel(k): v for k, v in engine_stats.items()} if engine_stats else None,
            "last": self.last,
            "user": self.user,
            "inFlight": len(self.inflight),
            "server": self.service.server_stats(),
        }

    def close(self) -> None:
        """The session ends: its streaks and requests are cancelled (shutdown, disconnect)."""
        self.streaks.clear()
        for task in list(self.inflight.values()):
            task.cancel()
        self.closed = True
        self.service.sessions.discard(self)


def camel(name: str) -> str:
    """snake_case → camelCase (the wire's spelling)."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def word_before(snap: Snapshot) -> str:
    """The part of an identifier left of the cursor ('' when the cursor is not in one)."""
    word = _WORD_BEFORE.search(snap.text, max(0, snap.offset - 256), snap.offset)
    return word.group(0) if word else ""
