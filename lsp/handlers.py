"""One thin handler per LSP method: read the params, take a snapshot, call the session."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from lsprotocol.converters import get_converter
from pygls.exceptions import JsonRpcException

from moe_lsp.prompts.actions import ActionKind

from . import code_actions, next_edit
from .documents import PositionEncoding, Snapshot
from .experts import experts_body
from .protocol import INVALID_PARAMS
from .server import MoeLanguageServer
from .session import word_before

log = logging.getLogger(__name__)

STATS_REQUEST = "moe/stats"
"""Client -> server: counters and the timings of the last completion."""
ACCEPTED_COMMAND = "moe-lsp.accepted"
"""Command attached to each ghost text; the editor runs it when the user accepts (a local count,
and the cue to prefetch the next completion). Arguments: [uri, kind], kind 'inline' or 'list';
a client that reports partial accepts sends [uri, 'partial']."""
EXPERTS_REQUEST = "moe/experts"
"""Client -> server: tokens per layer and expert over recent requests (lsp/experts.py)."""
NEXT_EDIT_REQUEST = "moe/nextEdit"
"""Client -> server: the edit that should follow the document's recent edits."""
REWRITE_COMMAND = "moe-lsp.rewrite"
"""Rewrite a selection as instructed (chat models): arguments [uri, range, instruction]; the
edit comes back as workspace/applyEdit."""
ACTION_FAILED = -32803
"""LSP RequestFailed: the action could not be resolved (the message says why)."""
_CONVERTER = get_converter()


def register(server: MoeLanguageServer) -> None:
    """Register every handler on `server`."""
    server.feature(lsp.INITIALIZE)(on_initialize)
    server.feature(lsp.INITIALIZED)(on_initialized)
    server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_configuration)
    server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)(on_open)
    server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)(on_change)
    server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)(on_close)
    server.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())(on_inline)
    server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(resolve_provider=False))(
        on_completion
    )
    server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite],
            resolve_provider=True,
        ),
    )(on_code_action)
    server.feature(lsp.CODE_ACTION_RESOLVE)(on_code_action_resolve)
    server.command(REWRITE_COMMAND)(on_rewrite)
    server.feature(lsp.SHUTDOWN)(on_shutdown)
    server.command(ACCEPTED_COMMAND)(on_accepted)
    server.feature(STATS_REQUEST)(on_stats)
    server.feature(NEXT_EDIT_REQUEST)(on_next_edit)
    server.feature(EXPERTS_REQUEST)(on_experts)


def on_initialize(ls: MoeLanguageServer, params: lsp.InitializeParams) -> None:
    session = ls.session
    chosen = ls.workspace.position_encoding or lsp.PositionEncodingKind.Utf16
    session.documents.encoding = PositionEncoding(getattr(chosen, "value", chosen))
    window = params.capabilities.window
    ls.progress_supported = bool(window and window.work_done_progress)
    session.user = getattr(ls.protocol, "user", None) or local_user()
    options = params.initialization_options
    if ls.shared and isinstance(options, dict) and "engine" in options:
        # A shared server's engine is the server's: a client never chooses the model or how
        # it is loaded (a model folder with remote code would run in the server).
        options = {k: v for k, v in options.items() if k != "engine"}
        log.warning("a client sent engine settings to the shared server; ignored")
        ls.show(
            lsp.MessageType.Warning,
            "Engine settings belong to the shared server (its command line or config file); "
            "yours were ignored. Completion settings apply to your session.",
        )
    ls.pulls_settings = bool(
        params.capabilities.workspace and params.capabilities.workspace.configuration
    )
    warn_settings(ls, session.configure(options), "initializationOptions")
    root = params.root_uri or (
        params.workspace_folders[0].uri if params.workspace_folders else None
    )
    if root and root.startswith("file:"):
        session.root_path = unquote(urlparse(root).path)
    log.info("initialize: position encoding %s", session.documents.encoding)


SETTINGS_SECTION = "moe"
"""The section of the client's settings pulled with workspace/configuration."""


async def on_initialized(ls: MoeLanguageServer, params: lsp.InitializedParams) -> None:
    for problem in ls.startup_warnings:
        ls.warn(problem)
    await ls.start_engine()
    await pull_settings(ls)


async def pull_settings(ls: MoeLanguageServer) -> None:
    """Completion settings from the client's `moe` section, when it answers
    workspace/configuration (engine settings there were read at `initialize`)."""
    if ls.pulls_settings:
        body = await ls.pull_settings(SETTINGS_SECTION)
        apply_settings(ls, body, "workspace/configuration", engine_warning=False)


async def on_configuration(ls: MoeLanguageServer, params: lsp.DidChangeConfigurationParams) -> None:
    # {"completion": {...}, "logPrompts": bool} (optionally under "moe"): applied at once. With
    # no settings (null, as clients that support the pull send), the settings are pulled.
    # Engine settings need a restart of the server and are not applied here.
    if not apply_settings(ls, params.settings, "settings"):
        await pull_settings(ls)


def apply_settings(
    ls: MoeLanguageServer, body: Any, origin: str, *, engine_warning: bool = True
) -> bool:
    """Apply a client's settings object live (each bad value: one warning); False if `body`
    holds none."""
    if isinstance(body, dict) and isinstance(body.get(SETTINGS_SECTION), dict):
        body = body[SETTINGS_SECTION]
    if body is None or body == {}:
        return False
    problems = []
    if isinstance(body, dict) and "engine" in body:
        body = {k: v for k, v in body.items() if k != "engine"}
        if engine_warning:
            problems.append("Engine settings take effect when the server restarts.")
    problems += ls.session.configure(body)
    if isinstance(body, dict):
        log.info("%s applied: %s", origin, ", ".join(sorted(map(str, body))[:20]))
    warn_settings(ls, problems, origin)
    return True


MAX_SETTINGS_WARNINGS = 5
"""Warnings shown for one settings object; the rest are only logged."""
MAX_LOGGED_PROBLEMS = 50
"""Problems of one settings object written to the server log; the rest are counted."""


def warn_settings(ls: MoeLanguageServer, problems: list[str], origin: str) -> None:
    """One warning per setting that was not applied (shown and logged), up to a bound."""
    for problem in problems[:MAX_LOGGED_PROBLEMS]:
        log.warning("%s: %s", origin, problem)
    if len(problems) > MAX_LOGGED_PROBLEMS:
        log.warning("%s: %d more settings not applied", origin, len(problems) - MAX_LOGGED_PROBLEMS)
    for problem in problems[:MAX_SETTINGS_WARNINGS]:
        ls.warn(problem)
    if len(problems) > MAX_SETTINGS_WARNINGS:
        ls.warn(
            f"{len(problems) - MAX_SETTINGS_WARNINGS} more settings were not applied (see the log)."
        )


def on_open(ls: MoeLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    ls.session.documents.open(d.uri, d.language_id, d.version, d.text)


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
    ls.session.change_document(params.text_document.uri, params.text_document.version, changes)


def on_close(ls: MoeLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.session.close_document(params.text_document.uri)


async def on_inline(
    ls: MoeLanguageServer, params: lsp.InlineCompletionParams
) -> lsp.InlineCompletionList:
    pos = params.position
    snap = ls.session.snapshot(params.text_document.uri, pos.line, pos.character)
    if snap is None:
        return lsp.InlineCompletionList(items=[])
    text = await ls.session.ghost_text(snap)
    if not text:
        return lsp.InlineCompletionList(items=next_edit_items(ls, snap, pos))
    accepted = lsp.Command(
        title="moe-lsp: accepted", command=ACCEPTED_COMMAND, arguments=[snap.uri, "inline"]
    )
    at = lsp.Range(start=pos, end=pos)
    return lsp.InlineCompletionList(
        items=[lsp.InlineCompletionItem(insert_text=text, range=at, command=accepted)]
    )


async def on_completion(ls: MoeLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    pos = params.position
    snap = ls.session.snapshot(params.text_document.uri, pos.line, pos.character)
    if snap is None:
        return lsp.CompletionList(is_incomplete=True, items=[])
    token = params.partial_result_token
    sent: list[str] = []

    def partial(text: str) -> None:
        # Partial results: items are appended by the client; the final answer is then empty.
        value = [_CONVERTER.unstructure(completion_item(ls, snap, pos, text))]
        ls.protocol.notify(lsp.PROGRESS, lsp.ProgressParams(token=token, value=value))
        sent.append(text)

    text = await ls.session.list_text(snap, partial if token is not None else None)
    if sent:
        if text and text != sent[-1]:
            partial(text)
        return lsp.CompletionList(is_incomplete=True, items=[])
    if not text:
        return lsp.CompletionList(is_incomplete=True, items=[])
    return lsp.CompletionList(is_incomplete=True, items=[completion_item(ls, snap, pos, text)])


def on_code_action(ls: MoeLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    # Listed at once from the syntax tree; the model runs only when one is resolved.
    r = params.range
    diagnostics = [
        (
            (d.range.start.line, d.range.start.character),
            (d.range.end.line, d.range.end.character),
            d.message,
        )
        for d in params.context.diagnostics
    ]
    start, end = (r.start.line, r.start.character), (r.end.line, r.end.character)
    found = code_actions.offers(ls.session, params.text_document.uri, start, end, diagnostics)
    by_message = {d.message: d for d in params.context.diagnostics}
    out = []
    for offer in found:
        fix = offer.action.kind is ActionKind.FIX
        attached = by_message.get(offer.diagnostic[2]) if offer.diagnostic else None
        out.append(
            lsp.CodeAction(
                title=f"moe-lsp: {offer.action.title}",
                kind=lsp.CodeActionKind.QuickFix if fix else lsp.CodeActionKind.RefactorRewrite,
                diagnostics=[attached] if attached is not None else None,
                data=offer.data(),
            )
        )
    return out


async def on_code_action_resolve(ls: MoeLanguageServer, action: lsp.CodeAction) -> lsp.CodeAction:
    # The model writes the edit now, with work-done progress; cancelling aborts it.
    async with ls.progress(f"moe-lsp: {action.title.removeprefix('moe-lsp: ')}"):
        try:
            done = await code_actions.resolve(ls.session, action.data)
        except code_actions.ActionError as err:
            raise JsonRpcException(str(err), ACTION_FAILED) from None
    action.edit = workspace_edit(done)
    return action


async def on_rewrite(ls: MoeLanguageServer, *args: Any) -> None:
    flat = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    try:
        uri, where, instruction = flat[0], flat[1], flat[2]
        start = (where["start"]["line"], where["start"]["character"])
        end = (where["end"]["line"], where["end"]["character"])
        if not isinstance(uri, str) or not isinstance(instruction, str):
            raise TypeError
    except (IndexError, KeyError, TypeError):
        raise JsonRpcException(
            "moe-lsp.rewrite takes [uri, range, instruction].", INVALID_PARAMS
        ) from None
    found = [
        o
        for o in code_actions.offers(ls.session, uri, start, end, [], instruction)
        if o.action.kind is ActionKind.REWRITE
    ]
    if not found:
        raise JsonRpcException(
            "Rewriting as instructed needs a chat model and a selection.", ACTION_FAILED
        )
    async with ls.progress("moe-lsp: rewriting the selection"):
        try:
            done = await code_actions.resolve(ls.session, found[0].data(), instruction)
        except code_actions.ActionError as err:
            raise JsonRpcException(str(err), ACTION_FAILED) from None
    await ls.workspace_apply_edit_async(
        lsp.ApplyWorkspaceEditParams(edit=workspace_edit(done), label="moe-lsp: rewrite")
    )


def workspace_edit(done: code_actions.Resolved) -> lsp.WorkspaceEdit:
    """One edit against the document version it was made for (a client refuses a stale one)."""
    (sl, sc), (el, ec) = done.start, done.end
    return lsp.WorkspaceEdit(
        document_changes=[
            lsp.TextDocumentEdit(
                text_document=lsp.OptionalVersionedTextDocumentIdentifier(
                    uri=done.uri, version=done.version
                ),
                edits=[
                    lsp.TextEdit(
                        range=lsp.Range(
                            start=lsp.Position(line=sl, character=sc),
                            end=lsp.Position(line=el, character=ec),
                        ),
                        new_text=done.new_text,
                    )
                ],
            )
        ]
    )


def next_edit_items(
    ls: MoeLanguageServer, snap: Snapshot, pos: lsp.Position
) -> list[lsp.InlineCompletionItem]:
    """The latest next-edit suggestion as a ranged inline item, when it is on the cursor's line
    at or after the cursor: the item replaces cursor..edit end (LSP 3.18 ranged items)."""
    found = next_edit.inline_at(ls.session, snap.uri, snap.version, (pos.line, pos.character))
    doc = ls.session.documents.get(snap.uri)
    if found is None or doc is None:
        return []
    start = doc.offset_at(*found.start, ls.session.documents.encoding)
    text = snap.text[snap.offset : start] + found.new_text
    at = lsp.Range(start=pos, end=lsp.Position(line=found.end[0], character=found.end[1]))
    return [lsp.InlineCompletionItem(insert_text=text, range=at)]


async def on_next_edit(ls: MoeLanguageServer, params: Any) -> dict[str, Any] | None:
    # {textDocument: {uri}} -> {textDocument: {uri, version}, range, newText} or null
    uri = _uri_of(params)
    found = await next_edit.predict(ls.session, uri)
    if found is None:
        return None
    (sl, sc), (el, ec) = found.start, found.end
    return {
        "textDocument": {"uri": found.uri, "version": found.version},
        "range": {
            "start": {"line": sl, "character": sc},
            "end": {"line": el, "character": ec},
        },
        "newText": found.new_text,
    }


def _uri_of(params: Any) -> str:
    document = getattr(params, "text_document", None) or getattr(params, "textDocument", None)
    uri = getattr(document, "uri", None)
    if not isinstance(uri, str):
        raise JsonRpcException("moe/nextEdit takes {textDocument: {uri}}.", INVALID_PARAMS)
    return uri


def on_shutdown(ls: MoeLanguageServer, params: Any) -> None:
    # Answered at once (VS Code's client waits 2 s for it, then kills the server); the
    # engine stops in the background, and leaving the process waits for that stop.
    log.info("shutdown: stopping the engine")
    ls.stop()


def on_accepted(ls: MoeLanguageServer, *args: Any) -> None:
    flat = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    uri = flat[0] if flat and isinstance(flat[0], str) else None
    kind = flat[1] if len(flat) > 1 and isinstance(flat[1], str) else "inline"
    ls.session.accepted(uri, kind)


def on_stats(ls: MoeLanguageServer, params: Any) -> dict[str, Any]:
    return ls.session.stats()


def on_experts(ls: MoeLanguageServer, params: Any) -> dict[str, Any]:
    host = ls.session.service.host
    return experts_body(host.engine, host.ready)


def local_user() -> str:
    """The name of the user this process runs as."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "local"


def completion_item(
    ls: MoeLanguageServer, snap: Snapshot, position: lsp.Position, text: str
) -> lsp.CompletionItem:
    """A completion-list item that replaces the typed word with the word plus `text`."""
    line, character = ls.session.word_start(snap)
    start = lsp.Position(line=line, character=character)
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
