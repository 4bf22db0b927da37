"""The language server: one thin handler per LSP method over documents, engine host, pipeline."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from moe_lsp.inference.engine import EngineState
from moe_lsp.prompts.builder import Request
from moe_lsp.prompts.crossfile import OpenDocument
from moe_lsp.prompts.profiles import Profile, detect_profile, profile_by_name

from . import __version__
from .debounce import Debouncer
from .documents import DocumentStore, PositionEncoding, Snapshot
from .engine_host import EngineFactory, EngineHost, default_factory
from .metrics import Latencies
from .pipeline import Outcome, complete
from .protocol import MoeProtocol
from .settings import ServerSettings, SettingsError
from .typing_cache import TypingCache

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "moe/status"
"""Server -> client: {state, message} whenever the engine's state changes."""
STATS_REQUEST = "moe/stats"
"""Client -> server: counters and the timings of the last completion."""
ACCEPTED_COMMAND = "moe-lsp.accepted"
"""Command attached to each ghost text; the editor runs it when the user accepts (local count)."""
_WORD_BEFORE = re.compile(r"\w*$")


class MoeLanguageServer(LanguageServer):
    """pygls server holding the documents, the engine host and the counters."""

    def __init__(
        self, settings: ServerSettings | None = None, factory: EngineFactory = default_factory
    ) -> None:
        super().__init__("moe-lsp", __version__, protocol_cls=MoeProtocol)
        self.settings = settings or ServerSettings()
        self.documents = DocumentStore()
        self.host = EngineHost(self._on_engine_status, factory)
        self.counts: dict[str, int] = {
            "requested": 0,
            "answered": 0,
            "empty": 0,
            "not_ready": 0,
            "cancelled": 0,
            "superseded": 0,
            "stale": 0,
            "from_cache": 0,
            "shown": 0,
            "accepted": 0,
            "failed": 0,
        }
        self.typing = TypingCache()
        self.latency = Latencies()
        self.debouncer = Debouncer()
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        self.last: dict[str, Any] | None = None
        self.profile: Profile | None = None
        self.root_path: str = ""
        self._progress_token: str | None = None
        self._progress_supported = False
        self._announced_failure = False

    # -- engine status -> client ---------------------------------------------------------------
    def _on_engine_status(self, state: EngineState, message: str) -> None:
        """Report engine state as progress, a status notification and, on failure, a message."""
        if state is EngineState.READY and self.profile is None:
            self.choose_profile()
        try:
            self.protocol.notify(STATUS_NOTIFICATION, {"state": str(state), "message": message})
        except Exception:
            log.debug("status notification failed", exc_info=True)
        token = self._progress_token
        if token is not None and token in self.work_done_progress.tokens:
            if state is EngineState.LOADING:
                self.work_done_progress.report(token, lsp.WorkDoneProgressReport(message=message))
            else:
                self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=message))
                self._progress_token = None
        if state is EngineState.FAILED and not self._announced_failure:
            self._announced_failure = True
            self.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Error, message=f"moe-lsp: {message}")
            )

    def choose_profile(self) -> None:
        """Pick the prompt profile: forced in settings, else from the tokenizer's tokens."""
        engine = self.host.engine
        tokens = list(getattr(getattr(engine, "tokenizer", None), "special_tokens", []) or [])
        has_chat = getattr(engine, "chat_template", None) is not None
        name = self.settings.completion.profile
        chosen: Profile | None = None
        if name != "auto":
            try:
                chosen = profile_by_name(name, tokens)
            except ValueError as err:
                self.window_show_message(
                    lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"moe-lsp: {err}")
                )
        elif self.settings.engine.model is None:
            # The embedded model is a base-style code model without FIM tokens; its chat
            # template exists but a 135M model follows code, not instructions.
            chosen = profile_by_name("prefix-only", tokens)
        if chosen is None:
            chosen = detect_profile(tokens, has_chat_template=has_chat)
        self.profile = chosen
        log.info("%s", chosen.description)

    def request_for(self, snap: Snapshot) -> Request:
        """The context engine's view of a completion request (open documents only)."""
        doc = self.documents.get(snap.uri)
        assert doc is not None
        limit = self.settings.completion.max_context_documents
        others = [
            OpenDocument(d.uri, self.display_path(d.uri), d.language_id, d.text, d.version)
            for d in self.documents.recent(limit, exclude=snap.uri)
        ]
        return Request(
            text=snap.text,
            offset=snap.offset,
            path=self.display_path(snap.uri),
            language=doc.spec,
            tree=doc.tree,
            others=others,
            repo_name=PurePosixPath(self.root_path).name if self.root_path else "",
            uri=snap.uri,
            version=snap.version,
        )

    def display_path(self, uri: str) -> str:
        """Path of `uri` relative to the workspace root (as the model should see it)."""
        path = unquote(urlparse(uri).path) if uri.startswith("file:") else uri
        if self.root_path and path.startswith(self.root_path.rstrip("/") + "/"):
            return path[len(self.root_path.rstrip("/")) + 1 :]
        return PurePosixPath(path).name or path

    async def start_engine(self) -> None:
        """Open a progress bar (if the client has them) and load the engine in the background."""
        if self._progress_supported:
            token = f"moe-lsp-load-{uuid.uuid4().hex[:8]}"
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), 5)
                self.work_done_progress.begin(
                    token,
                    lsp.WorkDoneProgressBegin(title="moe-lsp", message="Loading model ..."),
                )
                self._progress_token = token
            except Exception:
                log.info("client did not accept a progress token; loading without a progress bar")
        self.host.start(self.settings.engine)

    # -- completions ----------------------------------------------------------------------------
    def snapshot(self, uri: str, position: lsp.Position) -> Snapshot | None:
        """The document at `position`, or None for a document the client did not open."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        return doc.snapshot(position.line, position.character, self.documents.encoding)

    async def completion_text(self, snap: Snapshot) -> Outcome | None:
        """Run the pipeline for `snap`; None when the engine is not ready or the request failed."""
        self.counts["requested"] += 1
        engine = self.host.engine
        if not self.host.ready or engine is None or self.profile is None:
            self.counts["not_ready"] += 1
            return None
        task = self.claim(snap.uri)
        try:
            outcome = await complete(
                engine,
                engine.tokenizer,
                self.request_for(snap),
                self.settings.completion,
                self.profile,
                chat_template=getattr(engine, "chat_template", None),
                log_prompts=self.settings.log_prompts,
            )
        except asyncio.CancelledError:
            self.counts["cancelled"] += 1
            raise
        except Exception:
            self.counts["failed"] += 1
            log.exception("completion failed")
            return None
        finally:
            if task is not None and self.inflight.get(snap.uri) is task:
                del self.inflight[snap.uri]
        doc = self.documents.get(snap.uri)
        if doc is None or doc.version != snap.version:
            # The document changed while the model worked: never answer for an old version.
            self.counts["stale"] += 1
            return None
        self.counts["answered" if outcome.text else "empty"] += 1
        t = outcome.timings
        self.latency.add("context", t.prompt_ms)
        self.latency.add("first_token", t.first_token_ms)
        self.latency.add("total", t.total_ms)
        if t.first_token_ms is not None:
            self.latency.add("decode", t.total_ms - t.first_token_ms)
        self.last = {
            "mode": str(outcome.prompt.mode) if outcome.prompt else "none",
            "profile": outcome.prompt.profile if outcome.prompt else None,
            "finishReason": outcome.finish_reason,
            "at": time.time(),
            **{_camel(k): v for k, v in asdict(outcome.timings).items()},
        }
        return outcome

    def claim(self, uri: str) -> asyncio.Task[Any] | None:
        """Latest wins: make the current request the one in flight for `uri`; an older one is
        cancelled (answered RequestCancelled, its engine request aborted)."""
        task = asyncio.current_task()
        older = self.inflight.get(uri)
        if older is not None and older is not task and not older.done():
            older.cancel()
            self.counts["superseded"] += 1
        if task is not None:
            self.inflight[uri] = task
        return task

    def word_start(self, snap: Snapshot) -> lsp.Position:
        """Start of the identifier the cursor is in (where a completion-list edit begins)."""
        start = snap.offset - len(word_before(snap))
        doc = self.documents.get(snap.uri)
        assert doc is not None
        line, char = doc.position_at(start, self.documents.encoding)
        return lsp.Position(line=line, character=char)

    def stats(self) -> dict[str, Any]:
        """Body of the moe/stats response."""
        engine = self.host.engine
        engine_stats = asdict(engine.stats()) if engine is not None else None
        return {
            "state": str(self.host.state),
            "message": self.host.message,
            "loadSeconds": self.host.load_seconds,
            "restarts": self.host.restarts,
            "counts": dict(self.counts),
            "latencyMs": self.latency.summary(),
            "engine": {_camel(k): v for k, v in engine_stats.items()} if engine_stats else None,
            "last": self.last,
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def create_server(
    settings: ServerSettings | None = None, factory: EngineFactory = default_factory
) -> MoeLanguageServer:
    """A server with every handler registered."""
    server = MoeLanguageServer(settings, factory)

    @server.feature(lsp.INITIALIZE)
    def on_initialize(ls: MoeLanguageServer, params: lsp.InitializeParams) -> None:
        chosen = ls.workspace.position_encoding or lsp.PositionEncodingKind.Utf16
        ls.documents.encoding = PositionEncoding(getattr(chosen, "value", chosen))
        window = params.capabilities.window
        ls._progress_supported = bool(window and window.work_done_progress)
        try:
            ls.settings = ls.settings.merged(params.initialization_options)
            c = ls.settings.completion
            ls.debouncer = Debouncer(c.debounce_floor_ms, c.debounce_ceiling_ms)
        except SettingsError as err:
            log.error("bad initializationOptions: %s", err)
            ls.window_show_message(
                lsp.ShowMessageParams(
                    type=lsp.MessageType.Warning,
                    message=f"moe-lsp: {err} Using defaults for the rest.",
                )
            )
        root = params.root_uri or (
            params.workspace_folders[0].uri if params.workspace_folders else None
        )
        if root and root.startswith("file:"):
            ls.root_path = unquote(urlparse(root).path)
        log.info("initialize: position encoding %s", ls.documents.encoding)

    @server.feature(lsp.INITIALIZED)
    async def on_initialized(ls: MoeLanguageServer, params: lsp.InitializedParams) -> None:
        await ls.start_engine()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def on_open(ls: MoeLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        d = params.text_document
        ls.documents.open(d.uri, d.language_id, d.version, d.text)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: MoeLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        changes = []
        for c in params.content_changes:
            if isinstance(c, lsp.TextDocumentContentChangePartial):
                r = c.range
                changes.append(
                    (((r.start.line, r.start.character), (r.end.line, r.end.character)), c.text)
                )
            else:
                changes.append((None, c.text))
        ls.documents.change(params.text_document.uri, params.text_document.version, changes)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: MoeLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.documents.close(params.text_document.uri)
        ls.typing.forget(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def on_inline(
        ls: MoeLanguageServer, params: lsp.InlineCompletionParams
    ) -> lsp.InlineCompletionList:
        snap = ls.snapshot(params.text_document.uri, params.position)
        if snap is None:
            return lsp.InlineCompletionList(items=[])
        at = lsp.Range(start=params.position, end=params.position)
        prefix, suffix = snap.prefix, snap.suffix
        rest = ls.typing.lookup(snap.uri, prefix, suffix)
        if rest is not None:
            ls.counts["from_cache"] += 1
            text = rest
        else:
            ls.claim(snap.uri)
            delay = ls.debouncer.delay(snap.uri)
            if delay > 0:
                t0 = time.perf_counter()
                await asyncio.sleep(delay)  # a newer keystroke cancels this request here
                ls.latency.add("debounce", (time.perf_counter() - t0) * 1000)
                doc = ls.documents.get(snap.uri)
                if doc is None or doc.version != snap.version:
                    return lsp.InlineCompletionList(items=[])
            outcome = await ls.completion_text(snap)
            text = outcome.text if outcome is not None else ""
        ls.typing.remember(snap.uri, prefix, suffix, text)
        if not text:
            return lsp.InlineCompletionList(items=[])
        ls.counts["shown"] += 1
        accepted = lsp.Command(title="moe-lsp: accepted", command=ACCEPTED_COMMAND)
        return lsp.InlineCompletionList(
            items=[lsp.InlineCompletionItem(insert_text=text, range=at, command=accepted)]
        )

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(resolve_provider=False))
    async def on_completion(
        ls: MoeLanguageServer, params: lsp.CompletionParams
    ) -> lsp.CompletionList:
        snap = ls.snapshot(params.text_document.uri, params.position)
        outcome = await ls.completion_text(snap) if snap is not None else None
        if snap is None or outcome is None or not outcome.text:
            return lsp.CompletionList(is_incomplete=True, items=[])
        start = ls.word_start(snap)
        new_text = word_before(snap) + outcome.text
        first_line = new_text.strip().splitlines()[0] if new_text.strip() else new_text
        label = first_line if len(first_line) <= 60 else first_line[:57] + "..."
        item = lsp.CompletionItem(
            label=label,
            kind=lsp.CompletionItemKind.Snippet,
            detail="moe-lsp AI completion",
            documentation=lsp.MarkupContent(
                kind=lsp.MarkupKind.Markdown,
                value=f"```{snap.language_id}\n{new_text}\n```",
            ),
            filter_text=new_text,
            sort_text="0",
            insert_text_format=lsp.InsertTextFormat.PlainText,
            text_edit=lsp.TextEdit(
                range=lsp.Range(start=start, end=params.position), new_text=new_text
            ),
        )
        return lsp.CompletionList(is_incomplete=True, items=[item])

    @server.feature(lsp.SHUTDOWN)
    async def on_shutdown(ls: MoeLanguageServer, params: Any) -> None:
        log.info("shutdown: stopping the engine")
        await ls.host.shutdown()

    @server.command(ACCEPTED_COMMAND)
    def on_accepted(ls: MoeLanguageServer, *args: Any) -> None:
        ls.counts["accepted"] += 1

    @server.feature(STATS_REQUEST)
    def on_stats(ls: MoeLanguageServer, params: Any) -> dict[str, Any]:
        return ls.stats()

    return server


def word_before(snap: Snapshot) -> str:
    """The part of an identifier left of the cursor ('' when the cursor is not in one)."""
    word = _WORD_BEFORE.search(snap.text, max(0, snap.offset - 256), snap.offset)
    return word.group(0) if word else ""
