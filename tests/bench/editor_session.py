"""The evaluations' setup: the real engine started, and a session over it as an editor's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TextIO


@contextlib.asynccontextmanager
async def editor_session(
    settings: Any, say: Callable[[str], None]
) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """Start the engine `settings.engine` names, choose the profile as the server does
    (`settings.completion.profile` forces one), and yield a `Session` whose root is "/" (display
    paths like "humaneval/HumanEval_0.py", an empty repo name) with facts about the run; the
    session is closed and the engine stopped at the end."""
    from moe_lsp.inference.engine import EngineState
    from moe_lsp.lsp.engine_host import default_factory, resolve_model
    from moe_lsp.lsp.service import Service
    from moe_lsp.lsp.session import Session

    service = Service()
    model_dir = resolve_model(settings.engine, lambda state, message: say(message))
    engine = default_factory(settings.engine, model_dir)
    t0 = time.monotonic()
    say(f"starting the engine for {model_dir}")
    await asyncio.to_thread(engine.start)
    load_seconds = time.monotonic() - t0
    say(f"engine ready in {load_seconds:.1f} s")
    service.host.engine, service.host.state = engine, EngineState.READY
    service.forced_profile = settings.completion.profile
    service.embedded_model = settings.engine.model is None
    service.choose_profile()
    profile = service.profile
    assert profile is not None
    say(profile.description)
    session = Session(service, settings)
    session.root_path = "/"
    facts = {
        "model": model_dir,
        "profile": profile.name,
        "profile_description": profile.description,
        "load_seconds": load_seconds,
    }
    try:
        yield session, facts
    finally:
        session.close()
        await asyncio.to_thread(engine.shutdown)


def main_with_table(run: Callable[[TextIO], Awaitable[int]]) -> int:
    """Run `run(out)` with vLLM's output (it logs to stdout, and its engine processes inherit
    fd 1) sent to stderr, and `out` the real stdout, kept for the table."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        return asyncio.run(run(out))
    finally:
        out.flush()
