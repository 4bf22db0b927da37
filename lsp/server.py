"""The language server: one thin handler per LSP method over documents, engine host, pipeline."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from lsprotocol.converters import get_converter
from pygls.lsp.server import LanguageServer

from moe_lsp.inference.engine import EngineState
from moe_lsp.prompts.builder import Request
from moe_lsp.prompts.crossfile import OpenDocument
from moe_lsp.prompts.postprocess import finish
from moe_lsp.prompts.profiles import Profile, detect_profile, profile_by_name
from moe_lsp.prompts.prompt import Mode

from . import __version__
from .debounce import Debouncer
from .documents import DocumentStore, PositionEncoding, Snapshot
from .engine_host import EngineFactory, EngineHost, default_factory
from .generation import Generation
from .metrics import Latencies
from .pipeline import Outcome, Prepared, outcome_of, prepare, run
from .protocol import MoeProtocol
from .settings import ServerSettings, SettingsError
from .streaks import Streak, Streaks
from .typing_cache import TypingCache

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "moe/status"
"""Server -> client: {state, message} whenever the engine's state changes."""
STATS_REQUEST = "moe/stats"
"""Client -> server: counters and the timings of the last completion."""
ACCEPTED_COMMAND = "moe-lsp.accepted"
"""Command attached to each ghost text; the editor runs it when the user accepts (a local count,
and the cue to prefetch the next completion). Arguments: [uri, kind], kind 'inline' or 'list';
a client that reports partial accepts sends [uri, 'partial']."""
GHOST_TEXT_NOTIFICATION = "moe/ghostText"
"""Server -> client (when `completion.streamGhostText` is on): the growing ghost text of the
request in flight, {textDocument: {uri, version}, position, text, done}."""
GHOST_TEXT_INTERVAL = 0.05
"""Seconds between two moe/ghostText notifications of one request."""
_WORD_BEFORE = re.compile(r"\w*$")
_CONVERTER = get_converter()


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
            "accepted_partially": 0,
            "from_streak": 0,
            "prefetched": 0,
            "stopped_by_syntax": 0,
            "failed": 0,
        }
        self.streaks = Streaks()
        self.typing = TypingCache()
        self.latency = Latencies()
        self.debouncer = Debouncer()
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        self.stopping: asyncio.Task[None] | None = None
        """The engine stop begun by `shutdown`."""
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
            OpenDocument(d.uri, self.display_path(d.uri), d.language_id, text, version)
            for d in self.documents.recent(limit, exclude=snap.uri)
            for version, text in (d.settled(),)
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

    async def completion_text(
        self, snap: Snapshot, on_partial: Callable[[str], None] | None = None
    ) -> Outcome | None:
        """Run the pipeline for `snap` to its end; None when the engine is not ready or the
        request failed. `on_partial` gets the first whole lines of a multi-line completion
        while the rest is still coming (partial results)."""
        self.counts["requested"] += 1
        engine = self.host.engine
        if not self.host.ready or engine is None or self.profile is None:
            self.counts["not_ready"] += 1
            return None
        task = self.claim(snap.uri)
        c = self.settings.completion
        try:
            prepared = prepare(
                engine.tokenizer,
                self.request_for(snap),
                c,
                self.profile,
                chat_template=getattr(engine, "chat_template", None),
            )
            if isinstance(prepared, Outcome):
                outcome = prepared
            else:
                log_prompts = self.settings.log_prompts
                outcome = await run(
                    engine, prepared, c, on_partial=on_partial, log_prompts=log_prompts
                )
                if outcome.by_syntax:
                    self.counts["stopped_by_syntax"] += 1
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
        return self.fresh(snap, outcome)

    def fresh(self, snap: Snapshot, outcome: Outcome) -> Outcome | None:
        """`outcome`, recorded, if the document is still at `snap`'s version; else None: the
        document changed while the model worked, and an old version is never answered."""
        doc = self.documents.get(snap.uri)
        if doc is None or doc.version != snap.version:
            self.counts["stale"] += 1
            return None
        self.record(outcome)
        return outcome

    def record(self, outcome: Outcome) -> None:
        """Count an answered completion and keep its timings."""
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

    async def ghost_text(self, snap: Snapshot) -> str:
        """Ghost text for `snap`: from the document's hot streak, from the typing cache, or
        from a new generation answered early (its first line, or its whole lines once the
        time budget passes) that keeps generating for the next requests."""
        served = await self.from_streak(snap)
        if served:
            self.counts["from_streak"] += 1
            return served
        rest = self.typing.lookup(snap.uri, snap.prefix, snap.suffix)
        if rest is not None:
            self.counts["from_cache"] += 1
            return rest
        self.claim(snap.uri)
        delay = self.debouncer.delay(snap.uri)
        if delay > 0:
            t0 = time.perf_counter()
            await asyncio.sleep(delay)  # a newer keystroke cancels this request here
            self.latency.add("debounce", (time.perf_counter() - t0) * 1000)
            doc = self.documents.get(snap.uri)
            if doc is None or doc.version != snap.version:
                return ""
        outcome = await self.answer_early(snap)
        return outcome.text if outcome is not None else ""

    async def from_streak(self, snap: Snapshot) -> str:
        """The next piece of the document's running (or finished) streak, if it applies here;
        a streak the user typed away from is cancelled."""
        streak = self.streaks.get(snap.uri)
        if streak is None:
            return ""
        typed = streak.typed(snap.prefix, snap.suffix)
        piece: tuple[str, bool] | None = None
        if typed is not None:
            self.claim(snap.uri)
            found: list[tuple[str, bool] | None] = [None]

            def whole(_: Generation) -> bool:
                found[0] = streak.next_piece(typed)
                return found[0] is None or found[0][1]

            budget = self.settings.completion.first_line_budget_ms / 1000
            await streak.gen.wait(whole, budget)
            piece = found[0]
        if piece is None or not piece[1]:
            self.streaks.drop(snap.uri)
            return ""
        doc = self.documents.get(snap.uri)
        if doc is None or doc.version != snap.version:
            self.counts["stale"] += 1
            return ""
        text = piece[0] if piece[0].strip() else ""
        if text and not streak.shown and streak.prepared is not None:
            # adopted before anyone was answered from it: its timings count once
            log_prompts = self.settings.log_prompts
            self.record(outcome_of(streak.gen, streak.prepared, text=text, log_prompts=log_prompts))
        if text:
            streak.shown = streak.shown or text
        return text

    def _generation_for(self, prepared: Prepared, snap: Snapshot) -> tuple[Generation, Streak]:
        """Start the engine on a prepared prompt; a single-line ghost text at a line's end
        becomes a hot streak (multi-line rules, more tokens), answered at its first line."""
        engine = self.host.engine
        assert engine is not None
        c = self.settings.completion
        prompt = prepared.prompt
        streamed = prompt
        if (
            c.hot_streak_tokens > 0
            and prompt.mode is Mode.SINGLE_LINE
            and prompt.kind != "chat"
            and not prompt.line_suffix.strip()
        ):
            tokens = max(prompt.max_tokens, c.hot_streak_tokens)
            streamed = replace(prompt, mode=Mode.MULTI_LINE, opens_block=False, max_tokens=tokens)
        holder: list[Streak] = []
        last_sent = [0.0]

        def on_text(gen: Generation) -> None:
            if not c.stream_ghost_text or not holder:
                return
            now = time.perf_counter()
            if not gen.finished and now - last_sent[0] < GHOST_TEXT_INTERVAL:
                return
            last_sent[0] = now
            self.send_ghost_text(snap, holder[0], gen.finished)

        gen = Generation(
            engine, streamed, timeout=c.timeout_seconds, syntax_stop=c.syntax_stop, on_text=on_text
        )
        streak = Streak.at(gen, prompt, snap.prefix, snap.suffix)
        holder.append(streak)
        return gen, streak

    def send_ghost_text(self, snap: Snapshot, streak: Streak, done: bool) -> None:
        """One moe/ghostText notification with the streak's text as it stands."""
        doc = self.documents.get(snap.uri)
        if doc is None or doc.version != snap.version:
            return
        gen = streak.gen
        text = streak.first_answer() if not streak.shown else streak.text()
        if not done and not text:
            text = finish(gen.raw, streak.line_prompt)
        position = doc.position_at(snap.offset, self.documents.encoding)
        self.protocol.notify(
            GHOST_TEXT_NOTIFICATION,
            {
                "textDocument": {"uri": snap.uri, "version": snap.version},
                "position": {"line": position[0], "character": position[1]},
                "text": text,
                "done": done,
            },
        )

    async def answer_early(self, snap: Snapshot, *, prefetch: bool = False) -> Outcome | None:
        """Run a new generation for ghost text and answer as soon as its first piece is ready;
        it goes on as the document's streak. With `prefetch`, nobody waits: it is registered
        at once and answers the next request at `snap`."""
        self.counts["prefetched" if prefetch else "requested"] += 1
        engine = self.host.engine
        if not self.host.ready or engine is None or self.profile is None:
            self.counts["not_ready"] += 1
            return None
        try:
            prepared = prepare(
                engine.tokenizer,
                self.request_for(snap),
                self.settings.completion,
                self.profile,
                chat_template=getattr(engine, "chat_template", None),
            )
        except Exception:
            self.counts["failed"] += 1
            log.exception("building the prompt failed")
            return None
        if isinstance(prepared, Outcome):
            self.counts["empty"] += 1
            return prepared
        gen, streak = self._generation_for(prepared, snap)
        streak.prepared = prepared
        # Registered at once: a newer request whose text agrees with what this generation
        # writes (the user typed what the model predicts) adopts it instead of starting over.
        self.streaks.put(snap.uri, streak)
        if prefetch:
            return None
        task = asyncio.current_task()
        budget = self.settings.completion.first_line_budget_ms / 1000
        try:
            if not await gen.wait(lambda _: streak.first_ready(False), budget):
                await gen.wait(lambda _: streak.first_ready(True))
        except asyncio.CancelledError:
            self.counts["cancelled"] += 1
            newer = self.inflight.get(snap.uri)
            if newer is None or newer is task:
                # cancelled by the client, not superseded: nobody will read it
                if self.streaks.get(snap.uri) is streak:
                    self.streaks.drop(snap.uri)
            raise
        finally:
            if task is not None and self.inflight.get(snap.uri) is task:
                del self.inflight[snap.uri]
        if gen.error is not None:
            self.counts["failed"] += 1
            log.error("completion failed: %s", gen.error)
            return None
        if gen.by_syntax:
            self.counts["stopped_by_syntax"] += 1
        text = streak.first_answer()
        streak.shown = text
        if not text and gen.finished and self.streaks.get(snap.uri) is streak:
            self.streaks.drop(snap.uri)  # nothing to serve later
        outcome = outcome_of(gen, prepared, text=text, log_prompts=self.settings.log_prompts)
        return self.fresh(snap, outcome)

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
        task = asyncio.ensure_future(self.answer_early(snap, prefetch=True))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def claim(self, uri: str) -> asyncio.Task[Any] | None:
        """Latest wins: make the current request the one in flight for `uri`; an older one is
        cancelled (answered RequestCancelled, its engine request aborted)."""
        task = asyncio.current_task()
        older = self.inflight.get(uri)
        if older is not None and older is not task and not older.done():
            older.cancel()
            self.counts["superseded"] += 1
        if task is not None and self.inflight.get(uri) is not task:
            self.inflight[uri] = task
            task.add_done_callback(lambda t: self._release(uri, t))
        return task

    def _release(self, uri: str, task: asyncio.Task[Any]) -> None:
        """A finished request leaves `inflight` (which then holds only running requests)."""
        if self.inflight.get(uri) is task:
            del self.inflight[uri]

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

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_configuration(ls: MoeLanguageServer, params: lsp.DidChangeConfigurationParams) -> None:
        # {"completion": {...}, "logPrompts": bool} (optionally under "moe"): applied at once.
        # Engine settings need a restart of the server and are refused here.
        body = params.settings
        if isinstance(body, dict) and isinstance(body.get("moe"), dict):
            body = body["moe"]
        if not isinstance(body, dict) or not body:
            return
        try:
            if "engine" in body:
                raise SettingsError("Engine settings take effect when the server restarts.")
            ls.settings = ls.settings.merged(body)
            c = ls.settings.completion
            ls.debouncer = Debouncer(c.debounce_floor_ms, c.debounce_ceiling_ms)
            log.info("settings changed: %s", ", ".join(sorted(body)))
        except SettingsError as err:
            ls.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"moe-lsp: {err}")
            )

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
        ls.streaks.drop(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
    async def on_inline(
        ls: MoeLanguageServer, params: lsp.InlineCompletionParams
    ) -> lsp.InlineCompletionList:
        snap = ls.snapshot(params.text_document.uri, params.position)
        if snap is None:
            return lsp.InlineCompletionList(items=[])
        at = lsp.Range(start=params.position, end=params.position)
        text = await ls.ghost_text(snap)
        ls.typing.remember(snap.uri, snap.prefix, snap.suffix, text)
        if not text:
            return lsp.InlineCompletionList(items=[])
        ls.counts["shown"] += 1
        accepted = lsp.Command(
            title="moe-lsp: accepted", command=ACCEPTED_COMMAND, arguments=[snap.uri, "inline"]
        )
        return lsp.InlineCompletionList(
            items=[lsp.InlineCompletionItem(insert_text=text, range=at, command=accepted)]
        )

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(resolve_provider=False))
    async def on_completion(
        ls: MoeLanguageServer, params: lsp.CompletionParams
    ) -> lsp.CompletionList:
        snap = ls.snapshot(params.text_document.uri, params.position)
        if snap is None:
            return lsp.CompletionList(is_incomplete=True, items=[])
        token = params.partial_result_token
        sent: list[str] = []

        def partial(text: str) -> None:
            # Partial results: items are appended by the client; the final answer is then empty.
            item = completion_item(ls, snap, params.position, text)
            value = [_CONVERTER.unstructure(item)]
            ls.protocol.notify(lsp.PROGRESS, lsp.ProgressParams(token=token, value=value))
            sent.append(text)

        outcome = await ls.completion_text(snap, partial if token is not None else None)
        text = outcome.text if outcome is not None else ""
        if sent:
            if text and text != sent[-1]:
                partial(text)
            return lsp.CompletionList(is_incomplete=True, items=[])
        if not text:
            return lsp.CompletionList(is_incomplete=True, items=[])
        return lsp.CompletionList(
            is_incomplete=True, items=[completion_item(ls, snap, params.position, text)]
        )

    @server.feature(lsp.SHUTDOWN)
    def on_shutdown(ls: MoeLanguageServer, params: Any) -> None:
        # Answered at once (VS Code's client waits 2 s for it, then kills the server); the
        # engine stops in the background, and leaving the process waits for that stop.
        log.info("shutdown: stopping the engine")
        ls.streaks.clear()
        for task in list(ls.inflight.values()):
            task.cancel()
        ls.stopping = asyncio.ensure_future(ls.host.shutdown())

    @server.command(ACCEPTED_COMMAND)
    def on_accepted(ls: MoeLanguageServer, *args: Any) -> None:
        flat = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
        uri = flat[0] if flat and isinstance(flat[0], str) else None
        kind = flat[1] if len(flat) > 1 and isinstance(flat[1], str) else "inline"
        if kind == "partial":
            ls.counts["accepted_partially"] += 1
            return
        ls.counts["accepted"] += 1
        if uri is not None and kind == "inline":
            ls.prefetch_after_accept(uri)

    @server.feature(STATS_REQUEST)
    def on_stats(ls: MoeLanguageServer, params: Any) -> dict[str, Any]:
        return ls.stats()

    return server


def completion_item(
    ls: MoeLanguageServer, snap: Snapshot, position: lsp.Position, text: str
) -> lsp.CompletionItem:
    """A completion-list item that replaces the typed word with the word plus `text`."""
    start = ls.word_start(snap)
    new_text = word_before(snap) + text
    first_line = new_text.strip().splitlines()[0] if new_text.strip() else new_text
    label = first_line if len(first_line) <= 60 else first_line[:57] + "..."
    lines = new_text.count("\n") + 1
    return lsp.CompletionItem(
        label=label,
        kind=lsp.CompletionItemKind.Snippet,
        detail="moe-lsp AI completion" + (f" ({lines} lines)" if lines > 1 else ""),
        documentation=lsp.MarkupContent(
            kind=lsp.MarkupKind.Markdown, value=f"```{snap.language_id}\n{new_text}\n```"
        ),
        filter_text=new_text,
        sort_text="0" if lines == 1 else "1",
        insert_text_format=lsp.InsertTextFormat.PlainText,
        text_edit=lsp.TextEdit(range=lsp.Range(start=start, end=position), new_text=new_text),
        command=lsp.Command(
            title="moe-lsp: accepted", command=ACCEPTED_COMMAND, arguments=[snap.uri, "list"]
        ),
    )


def word_before(snap: Snapshot) -> str:
    """The part of an identifier left of the cursor ('' when the cursor is not in one)."""
    word = _WORD_BEFORE.search(snap.text, max(0, snap.offset - 256), snap.offset)
    return word.group(0) if word else ""
