"""One completion from a request: context engine prompt, engine stream, early stop, clean-up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from moe_lsp.inference.engine import Engine
from moe_lsp.prompts.builder import Budget, NoCompletion, Request, build
from moe_lsp.prompts.postprocess import finish
from moe_lsp.prompts.profiles import ChatTemplate, Profile
from moe_lsp.prompts.prompt import Mode, Prompt
from moe_lsp.prompts.secrets import redact
from moe_lsp.prompts.tokens import Tokenizer

from .generation import Generation
from .settings import CompletionSettings

log = logging.getLogger(__name__)

LOGGED_PROMPT_CHARS = 2000
"""Characters of text before the cursor logged with `logPrompts` on."""


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


def budget_of(settings: CompletionSettings) -> Budget:
    """The prompt budget the settings describe."""
    return Budget(
        total=settings.prompt_budget,
        context_share=settings.context_share,
        suffix_share=settings.suffix_share,
        step_lines=settings.window_step_lines,
        max_tokens_single=settings.max_tokens_single,
        max_tokens_multi=settings.max_tokens_multi,
    )


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
    built = build(request, tokenizer, profile, budget_of(settings), chat_template=chat_template)
    t_prompt = time.perf_counter()
    if isinstance(built, NoCompletion):
        log.debug("no completion: %s", built.reason)
        return Outcome("", None, _timings(t0, t_prompt, None, 0, None), "none: " + built.reason)
    if not built.token_ids:
        return Outcome("", built, _timings(t0, t_prompt, None, 0, built), "empty-prompt")
    return Prepared(built, t0, t_prompt)


def outcome_of(
    gen: Generation, prepared: Prepared, *, text: str | None = None, log_prompts: bool = False
) -> Outcome:
    """The cleaned-up result of a generation (`text`: already cleaned, e.g. its first line)."""
    prompt = prepared.prompt
    if text is None:
        text = finish(gen.raw, prompt, truncated=gen.truncated)
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
        # the debug switch: prompt and completion text, with secret-looking strings redacted
        log.info(
            "completion %s before cursor=%r raw=%r text=%r heal=%r",
            gen.request_id,
            redact(prompt.before[-LOGGED_PROMPT_CHARS:]),
            redact(gen.raw),
            redact(text),
            prompt.heal,
        )
    reason = gen.reason if gen.finished else "early"
    return Outcome(text, prompt, timings, reason, gen.raw, by_syntax=gen.by_syntax)


async def run(
    engine: Engine,
    prepared: Prepared,
    settings: CompletionSettings,
    *,
    on_partial: Callable[[str], None] | None = None,
    log_prompts: bool = False,
) -> Outcome:
    """Run a prepared prompt to its end; cancelling the calling task aborts the engine request.

    `on_partial` gets the first whole lines of a multi-line completion while the rest is
    still coming (partial results)."""
    prompt = prepared.prompt
    gen = Generation(
        engine, prompt, timeout=settings.timeout_seconds, syntax_stop=settings.syntax_stop
    )
    try:
        if on_partial is not None and prompt.mode is Mode.MULTI_LINE:
            first = [""]

            def lines(g: Generation) -> bool:
                first[0] = "" if g.finished else finish(g.raw, prompt, truncated=True)
                return g.finished or bool(first[0])

            await gen.wait(lines)
            if first[0]:
                on_partial(first[0])
        await gen.done()
    except asyncio.CancelledError:
        gen.cancel()
        raise
    if gen.error is not None:
        raise gen.error
    return outcome_of(gen, prepared, log_prompts=log_prompts)


async def complete(
    engine: Engine,
    tokenizer: Tokenizer,
    request: Request,
    settings: CompletionSettings,
    profile: Profile,
    *,
    chat_template: ChatTemplate | None = None,
    log_prompts: bool = False,
) -> Outcome:
    """Build the prompt and run one completion to its end."""
    prepared = prepare(tokenizer, request, settings, profile, chat_template=chat_template)
    if isinstance(prepared, Outcome):
        return prepared
    return await run(engine, prepared, settings, log_prompts=log_prompts)


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
