"""One completion from a request: context engine prompt, engine stream, early stop, clean-up."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass

from moe_lsp.inference.engine import Engine, Sampling
from moe_lsp.prompts.builder import Budget, NoCompletion, Request, build
from moe_lsp.prompts.postprocess import finish, is_done
from moe_lsp.prompts.profiles import ChatTemplate, Profile
from moe_lsp.prompts.prompt import Prompt
from moe_lsp.prompts.tokens import Tokenizer

from .settings import CompletionSettings

log = logging.getLogger(__name__)


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
    """Run one completion; cancelling the calling task aborts the engine request."""
    t0 = time.perf_counter()
    built = build(request, tokenizer, profile, budget_of(settings), chat_template=chat_template)
    t_prompt = time.perf_counter()
    if isinstance(built, NoCompletion):
        log.debug("no completion: %s", built.reason)
        return Outcome("", None, _timings(t0, t_prompt, None, 0, None), "none: " + built.reason)
    prompt = built
    if not prompt.token_ids:
        return Outcome("", prompt, _timings(t0, t_prompt, None, 0, prompt), "empty-prompt")
    request_id = f"cmpl-{uuid.uuid4().hex[:12]}"
    raw = ""
    tokens = 0
    first: float | None = None
    reason = "length"
    sampling = Sampling(
        max_tokens=prompt.max_tokens, stop=prompt.stop, stop_token_ids=prompt.stop_token_ids
    )
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            async with aclosing(engine.stream(request_id, prompt.token_ids, sampling)) as stream:
                async for delta in stream:
                    if first is None and delta.tokens:
                        first = time.perf_counter()
                    raw += delta.text
                    tokens += delta.tokens
                    if delta.finished:
                        reason = delta.finish_reason or "stop"
                        break
                    if is_done(raw, prompt):
                        reason = "complete"
                        break
    except TimeoutError:
        reason = "timeout"
        log.warning("completion %s stopped after %.1f s", request_id, settings.timeout_seconds)
    text = finish(raw, prompt, truncated=reason in ("length", "timeout"))
    timings = _timings(t0, t_prompt, first, tokens, prompt)
    log.info(
        "completion %s: %s %s (%s), %d prompt tokens, %d snippets, %d generated, "
        "first token %s ms, total %.0f ms, %s",
        request_id,
        prompt.profile,
        prompt.mode,
        prompt.reason,
        len(prompt.token_ids),
        prompt.snippets,
        tokens,
        "-" if timings.first_token_ms is None else f"{timings.first_token_ms:.0f}",
        timings.total_ms,
        reason,
    )
    if log_prompts:
        log.info("completion %s raw=%r text=%r heal=%r", request_id, raw, text, prompt.heal)
    return Outcome(text, prompt, timings, reason, raw)


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
