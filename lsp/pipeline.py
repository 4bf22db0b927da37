"""One completion from a document snapshot: prompt, engine stream, early stop, clean-up."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass

from moe_lsp.inference.engine import Engine, Sampling
from moe_lsp.prompts.postprocess import finish, is_done
from moe_lsp.prompts.prefix_prompt import build_prefix_prompt
from moe_lsp.prompts.prompt import Prompt
from moe_lsp.prompts.tokens import Tokenizer

from .documents import Snapshot
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
    prompt: Prompt
    timings: Timings
    finish_reason: str


async def complete(
    engine: Engine,
    tokenizer: Tokenizer,
    snap: Snapshot,
    settings: CompletionSettings,
    *,
    log_prompts: bool = False,
) -> Outcome:
    """Run one completion; cancelling the calling task aborts the engine request."""
    t0 = time.perf_counter()
    prompt = build_prefix_prompt(
        snap.prefix,
        snap.suffix,
        tokenizer,
        budget=settings.prompt_budget,
        max_tokens_single=settings.max_tokens_single,
        max_tokens_multi=settings.max_tokens_multi,
    )
    t_prompt = time.perf_counter()
    if not prompt.token_ids:
        return Outcome("", prompt, _timings(t0, t_prompt, None, 0, prompt), "empty-prompt")
    request_id = f"cmpl-{uuid.uuid4().hex[:12]}"
    raw = ""
    tokens = 0
    first: float | None = None
    reason = "length"
    sampling = Sampling(max_tokens=prompt.max_tokens)
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
    text = finish(raw, prompt)
    timings = _timings(t0, t_prompt, first, tokens, prompt)
    log.info(
        "completion %s: %s, %d prompt tokens, %d generated, first token %s ms, total %.0f ms, %s",
        request_id,
        prompt.mode,
        len(prompt.token_ids),
        tokens,
        "-" if timings.first_token_ms is None else f"{timings.first_token_ms:.0f}",
        timings.total_ms,
        reason,
    )
    if log_prompts:
        log.info("completion %s raw=%r text=%r heal=%r", request_id, raw, text, prompt.heal)
    return Outcome(text, prompt, timings, reason)


def _timings(
    t0: float, t_prompt: float, first: float | None, tokens: int, prompt: Prompt
) -> Timings:
    now = time.perf_counter()
    return Timings(
        prompt_ms=(t_prompt - t0) * 1000,
        first_token_ms=None if first is None else (first - t0) * 1000,
        total_ms=(now - t0) * 1000,
        tokens=tokens,
        prompt_tokens=len(prompt.token_ids),
    )
