"""A scripted engine for fast pipeline tests (never used for end-to-end tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from moe_lsp.inference.engine import Delta, EngineHealth, EngineState, EngineStats, Sampling


class ScriptedEngine:
    """Yields the given pieces one token each; records what was asked and what was aborted."""

    def __init__(self, pieces: Sequence[str], delay: float = 0.0, tokenizer: object = None) -> None:
        self.pieces = list(pieces)
        self.delay = delay
        self.tokenizer = tokenizer
        self.requests: list[tuple[str, tuple[int, ...], Sampling]] = []
        self.closed: list[str] = []
        self.yielded = 0
        self.running = 0
        self.started = False
        self.stopped = False
        self.fail_start: Exception | None = None

    def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.started = True

    def shutdown(self) -> None:
        self.stopped = True

    async def stream(
        self, request_id: str, prompt_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[Delta]:
        self.requests.append((request_id, tuple(prompt_ids), sampling))
        self.running += 1
        finished = False
        try:
            for i, piece in enumerate(self.pieces[: sampling.max_tokens]):
                if self.delay:
                    await asyncio.sleep(self.delay)
                last = i == len(self.pieces) - 1
                self.yielded += 1
                finished = last
                yield Delta(piece, 1, last, "stop" if last else None)
        finally:
            self.running -= 1
            if not finished:
                self.closed.append(request_id)

    async def abort(self, request_id: str) -> None:
        self.closed.append(request_id)

    def health(self) -> EngineHealth:
        return EngineHealth(EngineState.READY if self.started else EngineState.STOPPED)

    def stats(self) -> EngineStats:
        return EngineStats(requests=len(self.requests), running=self.running)


def ready_session(engine: ScriptedEngine, settings: object = None, profile: str = "prefix-only"):
    """A session whose service holds `engine`, started and ready, prompting with `profile`."""
    from moe_lsp.inference.engine import EngineState
    from moe_lsp.lsp.service import Service
    from moe_lsp.lsp.session import Session
    from moe_lsp.lsp.settings import ServerSettings
    from moe_lsp.prompts.profiles import profile_by_name

    service = Service(lambda config, model_dir: engine)  # type: ignore[arg-type,return-value]
    engine.start()
    service.host.engine = engine  # type: ignore[assignment]
    service.host.state = EngineState.READY
    service.profile = profile_by_name(profile)
    return Session(service, settings or ServerSettings())  # type: ignore[arg-type]
