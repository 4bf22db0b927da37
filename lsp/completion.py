"""The one completion path: ghost text, list items, prefetch and the eval all run `complete`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from moe_lsp.inference.engine import Engine
from moe_lsp.prompts.builder import NoCompletion, Request, Task, build
from moe_lsp.prompts.profiles import ChatTemplate, Profile
from moe_lsp.prompts.prompt import Mode, Prompt
from moe_lsp.prompts.reader import Reader, plan
from moe_lsp.prompts.secrets import redact
from moe_lsp.prompts.tokens import Tokenizer

from .debounce import Debouncer
from .documents import Snapshot
from .generation import Generation
from .metrics import Latencies
from .service import Service
from .settings import CompletionSettings, ServerSettings
from .streaks import Streak, Streaks
from .typing_cache import TypingCache

log = logging.getLogger(__name__)

LOGGED_PROMPT_CHARS = 2000
"""Characters of text before the cursor logged with `logPrompts` on."""
PREFETCH_PRIORITY = 1
"""Engine priority of a prefetch (nobody waits for it): after every request someone waits for,
in every session (the engine's requests are lower-first)."""
GHOST_TEXT_INTERVAL = 0.05
"""Seconds between two moe/ghostText notifications of one request."""


@dataclass(frozen=True)
class Timings:
    """Where the time of one completion went, in milliseconds."""

    prompt_ms: float
    first_token_ms: float | None
    total_ms: float
    tokens: int
    prompt_tokens: int


@dataclass(frozen=True)
class Outcome:
    """The text to insert and how it was made."""

    text: str
    prompt: Prompt | None
    """None when the cursor analysis decided there is nothing to complete."""
    timings: Timings
    finish_reason: str
    raw: str = ""
    """What the engine generated, before clean-up (for evaluations and debug logs)."""
    by_syntax: bool = False
    """The generation was stopped because the tree-sitter check saw the body closed."""


@dataclass(frozen=True)
class Prepared:
    """A prompt ready for the engine, and when its building started and ended."""

    prompt: Prompt
    started: float
    built: float


def prepare(
    tokenizer: Tokenizer,
    request: Request,
    settings: CompletionSettings,
    profile: Profile,
    *,
    chat_template: ChatTemplate | None = None,
) -> Prepared | Outcome:
    """Build the prompt; an (empty) Outcome when there is nothing to ask the engine."""
    t0 = time.perf_counter()
    built = build(request, tokenizer, profile, settings.budget(), chat_template=chat_template)
    t_prompt = time.perf_counter()
    if isinstance(built, NoCompletion):
        log.debug("no completion: %s", built.reason)
        return Outcome("", None, _timings(t0, t_prompt, None, 0, None), "none: " + built.reason)
    if not built.token_ids:
        return Outcome("", built, _timings(t0, t_prompt, None, 0, built), "empty-prompt")
    return Prepared(built, t0, t_prompt)


def outcome_of(
    gen: Generation, prepared: Prepared, *, text: str, log_prompts: bool = False
) -> Outcome:
    """The result of a generation as answered (`text`: cleaned by the reader)."""
    prompt = prepared.prompt
    timings = _timings(prepared.started, prepared.built, gen.first_token, gen.tokens, prompt)
    log.info(
        "completion %s: %s %s (%s), %d prompt tokens, %d snippets, %d generated, "
        "first token %s ms, total %.0f ms, %s%s",
        gen.request_id,
        prompt.profile,
        prompt.mode,
        prompt.reason,
        len(prompt.token_ids),
        prompt.snippets,
        gen.tokens,
        "-" if timings.first_token_ms is None else f"{timings.first_token_ms:.0f}",
        timings.total_ms,
        gen.reason if gen.finished else "answered early",
        " (syntax)" if gen.by_syntax else "",
    )
    if log_prompts:
        # the debug switch: prompt and completion text, with secret-looking strings redacted;
        # the whole text is redacted before it is cut, so a cut never keeps part of a secret
        log.info(
            "completion %s before cursor=%r raw=%r text=%r heal=%r",
            gen.request_id,
            redact(prompt.before)[-LOGGED_PROMPT_CHARS:],
            redact(gen.raw),
            redact(text),
            prompt.heal,
        )
    reason = gen.reason if gen.finished else "early"
    return Outcome(text, prompt, timings, reason, gen.raw, by_syntax=gen.by_syntax)


class Wait(StrEnum):
    """How long a caller of `complete` waits for the text."""

    FIRST = "first"
    """Ghost text: the first answer, or the whole lines so far once the time budget passes."""
    WHOLE = "whole"
    """List items and the eval: the first answer once it is whole, however long that takes."""
    NONE = "none"
    """Prefetch: start the generation for the request that will come, and return."""


class Session(Protocol):
    """What the completion path needs of a client's session (lsp/session.py)."""

    settings: ServerSettings
    service: Service
    streaks: Streaks
    typing: TypingCache
    debouncer: Debouncer
    inflight: dict[str, asyncio.Task[Any]]
    latency: Latencies
    max_inflight: int

    def count(self, name: str) -> None: ...
    def request_for(self, snap: Snapshot, task: Task | None = None) -> Request: ...
    def claim(self, uri: str) -> asyncio.Task[Any] | None: ...
    def is_current(self, snap: Snapshot) -> bool: ...
    def fresh(self, snap: Snapshot, outcome: Outcome) -> Outcome | None: ...
    def record(self, outcome: Outcome) -> None: ...
    def send_ghost_text(self, snap: Snapshot, streak: Streak, done: bool) -> None: ...


async def complete(
    session: Session,
    snap: Snapshot,
    wait: Wait,
    *,
    on_partial: Callable[[str], None] | None = None,
    job: Task | None = None,
) -> Outcome | None:
    """The one completion path: every ghost text, list item, prefetch, code action and eval
    task runs it.

    Serves `snap` from the document's hot streak or the typing cache when they apply. Else it
    builds the prompt (prompts/builder.py), plans it (prompts/reader.py: the hot-streak form),
    starts a `Generation` that becomes the document's streak, and answers with what the reader
    calls the first answer. `on_partial` (with `Wait.WHOLE`) gets the first whole lines of a
    multi-line completion while the rest comes. `job`: a code action's task (prompts/
    actions.py), run to its end beside the document's completions, never served from or as a
    streak. None: the engine is not ready, the request failed, or the document changed
    meanwhile (an old version is never answered)."""
    if wait is Wait.NONE:
        return await _generate(session, snap, wait, on_partial, None)
    key = _key(snap, job)
    current = asyncio.current_task()
    try:
        if job is None:
            served = await _from_streak(session, snap, wait)
            if served is not None:
                session.count("from_streak")
                return served
            rest = session.typing.lookup(snap.uri, snap.prefix, snap.suffix)
            if rest is not None:
                session.count("from_cache")
                return _served(rest, None, "typing")
        if len(session.inflight) >= session.max_inflight and key not in session.inflight:
            session.count("throttled")  # one session cannot take the engine from the others
            return None
        session.claim(key)
        if wait is Wait.FIRST:
            delay = session.debouncer.delay(snap.uri)
            if delay > 0:
                t0 = time.perf_counter()
                await asyncio.sleep(delay)  # a newer keystroke cancels this request here
                session.latency.add("debounce", (time.perf_counter() - t0) * 1000)
                if not session.is_current(snap):
                    return None
        return await _generate(session, snap, wait, on_partial, job)
    finally:
        if current is not None and session.inflight.get(key) is current:
            del session.inflight[key]  # it holds running requests only


def _key(snap: Snapshot, job: Task | None) -> str:
    """Where a request is kept (in flight, as a streak): its document, or its document's
    code action, which neither replaces nor is replaced by the document's completions."""
    return snap.uri if job is None else f"{snap.uri}#{job.kind}"


async def _from_streak(session: Session, snap: Snapshot, wait: Wait) -> Outcome | None:
    """The next piece of the document's running (or finished) streak, if it applies here;
    a streak the user typed away from is cancelled."""
    streak = session.streaks.get(snap.uri)
    if streak is None:
        return None
    typed = streak.typed(snap.prefix, snap.suffix)
    piece: tuple[str, bool] | None = None
    if typed is not None:
        streak.adopted = True
        session.claim(snap.uri)
        found: list[tuple[str, bool] | None] = [None]

        def whole(_: Generation) -> bool:
            found[0] = streak.next_piece(typed)
            return found[0] is None or found[0][1]

        c = session.settings.completion
        await streak.gen.wait(whole, c.first_line_budget_ms / 1000 if wait is Wait.FIRST else None)
        piece = found[0]
    if piece is None or not piece[1]:
        session.streaks.drop(snap.uri)
        return None
    if not session.is_current(snap):
        session.count("stale")
        return None
    text = piece[0] if piece[0].strip() else ""
    if not text:
        return None
    prepared = streak.prepared
    if streak.shown:
        outcome = _served(text, prepared.prompt, "streak")
    else:
        # adopted before anyone was answered from it: its timings count once
        outcome = outcome_of(
            streak.gen, prepared, text=text, log_prompts=session.settings.log_prompts
        )
        session.record(outcome)
    streak.shown = streak.shown or text
    return outcome


async def _generate(
    session: Session,
    snap: Snapshot,
    wait: Wait,
    on_partial: Callable[[str], None] | None,
    job: Task | None,
) -> Outcome | None:
    """A new generation for `snap`, registered at once as the document's streak (a newer
    request whose text agrees with what it writes adopts it instead of starting over)."""
    session.count("prefetched" if wait is Wait.NONE else "requested")
    service = session.service
    engine = service.engine()
    profile = service.profile
    if engine is None or profile is None:
        session.count("not_ready")
        return None
    c = session.settings.completion
    try:
        prepared = prepare(
            engine.tokenizer,
            session.request_for(snap, job),
            c,
            profile,
            chat_template=getattr(engine, "chat_template", None),
        )
    except Exception:
        session.count("failed")
        log.exception("building the prompt failed")
        return None
    if isinstance(prepared, Outcome):
        return None if wait is Wait.NONE else session.fresh(snap, prepared)
    streak_tokens = c.hot_streak_tokens if job is None else 0
    reader = Reader(
        plan(prepared.prompt, streak_tokens),
        syntax_stop=c.syntax_stop,
        first_cut_chars=c.first_answer_chars,
    )
    priority = PREFETCH_PRIORITY if wait is Wait.NONE else 0
    streak = _streak(session, snap, engine, prepared, reader, priority)
    key = _key(snap, job)
    session.streaks.put(key, streak)
    if wait is Wait.NONE:
        return None
    gen = streak.gen
    task = asyncio.current_task()
    try:
        if wait is Wait.FIRST:
            if not await gen.wait(
                lambda _: streak.first_ready(False), c.first_line_budget_ms / 1000
            ):
                await gen.wait(lambda _: streak.first_ready(True))
        else:
            if on_partial is not None and reader.plan.answer.mode is Mode.MULTI_LINE:
                lines = [""]

                def some_lines(g: Generation) -> bool:
                    lines[0] = reader.lines_so_far(g)
                    return g.finished or bool(lines[0])

                await gen.wait(some_lines)
                if lines[0]:
                    on_partial(lines[0])
            await gen.wait(lambda _: streak.first_ready(False))
    except asyncio.CancelledError:
        session.count("cancelled")
        newer = session.inflight.get(key)
        if (newer is None or newer is task) and session.streaks.get(key) is streak:
            # cancelled by the client, not superseded (an editor cancels the old request
            # before it asks again): the next request may still adopt it for a moment
            grace = 0.0 if job is not None else c.adopt_grace_ms / 1000
            _drop_unless_adopted(session, key, streak, grace)
        raise
    if gen.error is not None:
        session.count("failed")
        log.error("completion failed: %s", gen.error)
        return None
    if gen.by_syntax:
        session.count("stopped_by_syntax")
    text = streak.first_answer()
    streak.shown = text
    if (job is not None or not text) and session.streaks.get(key) is streak:
        if job is not None or gen.finished:
            session.streaks.drop(key)  # nothing to serve later
    outcome = outcome_of(gen, prepared, text=text, log_prompts=session.settings.log_prompts)
    return session.fresh(snap, outcome)


def _drop_unless_adopted(session: Session, key: str, streak: Streak, grace: float) -> None:
    """Drop (and so abort) `streak` after `grace` seconds unless a request adopted it."""

    def drop() -> None:
        if session.streaks.get(key) is streak and not streak.adopted:
            session.streaks.drop(key)

    if grace <= 0:
        drop()
    else:
        asyncio.get_running_loop().call_later(grace, drop)


def _streak(
    session: Session,
    snap: Snapshot,
    engine: Engine,
    prepared: Prepared,
    reader: Reader,
    priority: int,
) -> Streak:
    """Start the engine on the reader's streamed prompt, anchored at the cursor."""
    c = session.settings.completion
    holder: list[Streak] = []
    last_sent = [0.0]

    def on_text(gen: Generation) -> None:
        if not c.stream_ghost_text or not holder:
            return
        now = time.perf_counter()
        if not gen.finished and now - last_sent[0] < GHOST_TEXT_INTERVAL:
            return
        last_sent[0] = now
        session.send_ghost_text(snap, holder[0], gen.finished)

    gen = Generation(
        engine,
        reader.plan.streamed,
        timeout=c.timeout_seconds,
        stop=reader.stop,
        priority=priority,
        on_text=on_text,
    )
    streak = Streak.at(gen, reader, snap.prefix, snap.suffix)
    streak.prepared = prepared
    holder.append(streak)
    return streak


def _served(text: str, prompt: Prompt | None, reason: str) -> Outcome:
    """An answer served from what an earlier request made (no engine time of its own)."""
    now = time.perf_counter()
    return Outcome(text, prompt, _timings(now, now, None, 0, prompt), reason)


def _timings(
    t0: float, t_prompt: float, first: float | None, tokens: int, prompt: Prompt | None
) -> Timings:
    now = time.perf_counter()
    return Timings(
        prompt_ms=(t_prompt - t0) * 1000,
        first_token_ms=None if first is None else (first - t0) * 1000,
        total_ms=(now - t0) * 1000,
        tokens=tokens,
        prompt_tokens=len(prompt.token_ids) if prompt else 0,
    )
