"""A running completion: one engine stream in its own task, read by whoever waits on it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import aclosing

from moe_lsp.inference.engine import Engine, Sampling
from moe_lsp.prompts.postprocess import StopCheck
from moe_lsp.prompts.prompt import Prompt

log = logging.getLogger(__name__)


class Generation:
    """Streams `prompt` from `engine` in a task of its own, so an answer can be given early
    (the first line) while the rest keeps coming. Cancelling it aborts the engine request."""

    def __init__(
        self,
        engine: Engine,
        prompt: Prompt,
        *,
        timeout: float,
        stop: StopCheck | None = None,
        priority: int = 0,
        on_text: Callable[[Generation], None] | None = None,
    ) -> None:
        self.prompt = prompt
        self.request_id = f"cmpl-{uuid.uuid4().hex[:12]}"
        self.raw = ""
        """Text generated so far (raw, before clean-up)."""
        self.tokens = 0
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.ended: float | None = None
        self.reason = "length"
        """Why it ended: 'stop' (end of sequence), 'complete' (a whole completion), 'length',
        'timeout', 'cancelled' or 'error'."""
        self.by_syntax = False
        """The stop came from tree-sitter seeing the block closed."""
        self.error: Exception | None = None
        """What the engine raised, when `reason` is 'error'."""
        self._engine = engine
        self._timeout = timeout
        self._priority = priority
        self._check = stop
        """When the text is whole (the prompts-side reader's rule); None: run to the limit."""
        self._on_text = on_text
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.request_id)
        self._task.add_done_callback(self._ended)

    @property
    def finished(self) -> bool:
        """The engine request is over (for whatever reason)."""
        return self.ended is not None or self._task.done()

    @property
    def truncated(self) -> bool:
        """It ended on a limit, not because the completion was whole."""
        return self.reason in ("length", "timeout", "cancelled", "error")

    def cancel(self) -> None:
        """Stop generating (aborts the engine request); waiters see it finished."""
        if not self._task.done():
            self._task.cancel()

    async def wait(self, ready: Callable[[Generation], bool], timeout: float | None = None) -> bool:
        """Wait until `ready(self)` holds or the generation ends; False if it did not hold
        (ended first, or `timeout` seconds passed)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            if ready(self):
                return True
            if self.finished:
                return ready(self)
            self._changed.clear()
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return ready(self)

    async def done(self) -> None:
        """Wait for the end (does not cancel the generation if the waiter is cancelled)."""
        await self.wait(lambda g: g.finished)

    async def _run(self) -> None:
        prompt = self.prompt
        ids = prompt.token_ids
        max_tokens = prompt.max_tokens
        try:
            async with asyncio.timeout(self._timeout):
                if prompt.heal_token_ids and max_tokens > 1:
                    # Constrained healing: the first token must start with the healed text
                    # (one step with `allowed_token_ids`); the rest continues from it.
                    first = Sampling(
                        max_tokens=1,
                        allowed_token_ids=prompt.heal_token_ids,
                        stop_token_ids=prompt.stop_token_ids,
                        priority=self._priority,
                    )
                    chosen: tuple[int, ...] = ()
                    stream = self._engine.stream(self.request_id + "-heal", ids, first)
                    async with aclosing(stream) as deltas:
                        async for delta in deltas:
                            self._take(delta.text, delta.tokens)
                            chosen += delta.token_ids
                    if chosen:
                        ids, max_tokens = ids + chosen, max_tokens - len(chosen)
                        if self._whole():
                            return
                    else:  # the engine does not report ids: ask again without the constraint
                        self.raw, self.tokens = "", 0
                sampling = Sampling(
                    max_tokens=max_tokens,
                    stop=prompt.stop,
                    stop_token_ids=prompt.stop_token_ids,
                    priority=self._priority,
                    # a chat reply keeps its special tokens: `</think>` ends reasoning
                    skip_special_tokens=prompt.kind != "chat",
                )
                stream = self._engine.stream(self.request_id, ids, sampling)
                async with aclosing(stream) as deltas:
                    async for delta in deltas:
                        self._take(delta.text, delta.tokens)
                        if delta.finished:
                            self.reason = delta.finish_reason or "stop"
                            break
                        if self._whole():
                            break
                        self._notify()
        except TimeoutError:
            self.reason = "timeout"
            log.warning("completion %s stopped after %.1f s", self.request_id, self._timeout)
        except asyncio.CancelledError:
            self.reason = "cancelled"
        except Exception as err:
            self.reason = "error"
            self.error = err
        finally:
            self.ended = time.perf_counter()
            self._notify()

    def _take(self, text: str, tokens: int) -> None:
        if self.first_token is None and tokens:
            self.first_token = time.perf_counter()
        self.raw += text
        self.tokens += tokens

    def _whole(self) -> bool:
        """True (and the reason set) once the stop rules say the completion is whole."""
        if self._check is not None and self._check.done(self.raw):
            self.reason = "complete"
            self.by_syntax = self._check.by_syntax
            return True
        return False

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Wake the waiters also when the task was cancelled before it ever ran."""
        if task.cancelled():
            self.reason = "cancelled"
            if self.ended is None:
                self.ended = time.perf_counter()
        self._changed.set()

    def _notify(self) -> None:
        self._changed.set()
        if self._on_text is not None:
            try:
                self._on_text(self)
            except Exception:
                log.debug("text listener failed", exc_info=True)
