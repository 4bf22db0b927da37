"""Owns the engine's life in the server: background load with progress, readiness, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.engine import EngineState, StartableEngine
from moe_lsp.inference.errors import InferenceError
from moe_lsp.inference.factory import create_engine
from moe_lsp.inference.openai_wire import display_url

from .orphans import child_pids, end_processes

log = logging.getLogger(__name__)

WATCH_SECONDS = 2.0
"""How often the engine's health is checked."""
MAX_RESTARTS = 5
"""Restarts tried in a row after the engine dies."""
BACKOFF_FIRST_SECONDS = 1.0
"""Wait before the first restart; doubled for each next one."""
BACKOFF_MAX_SECONDS = 60.0
"""Longest wait between restarts."""
STOP_WAIT_SECONDS = 3.0
"""How long leaving the process waits for the engine to stop cleanly; then its processes are
ended (SIGTERM, then SIGKILL), so that all of them are gone within 10 s of `exit`."""

T = TypeVar("T")

StatusCallback = Callable[[EngineState, str], None]
"""Called with (state, human message) on every change of the engine's state."""


__all__ = ["EngineFactory", "EngineHost", "StartableEngine", "default_factory", "resolve_model"]

EngineFactory = Callable[[EngineConfig, str], StartableEngine]


def default_factory(config: EngineConfig, model_dir: str) -> StartableEngine:
    """The engine `config.backend` names (in-process vLLM by default)."""
    return create_engine(config, model_dir)


def resolve_model(config: EngineConfig, on_status: StatusCallback) -> str:
    """The model folder or hub id to load; prepares the default model on first use (blocking).
    A remote backend gets the configured model name ('' to use the server's), never a
    prepared folder: its tokenizer is engine.tokenizer or the server's own."""
    if config.model or config.remote:
        return config.model or ""
    from moe_lsp.inference.model_store import default_model_dir, is_prepared, prepare_default_model

    target = default_model_dir()
    if not is_prepared(target):
        on_status(EngineState.LOADING, "Preparing the default model (first run, about a minute)")
        prepare_default_model(target, progress=True)
    return str(target)


class EngineHost:
    """Starts the engine in the background and tells the server how it goes."""

    def __init__(self, on_status: StatusCallback, factory: EngineFactory = default_factory) -> None:
        self._on_status = on_status
        self._factory = factory
        self.engine: StartableEngine | None = None
        self.state = EngineState.STOPPED
        self.message = ""
        self.load_seconds: float | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopped: threading.Event | None = None
        """Set when an engine stop begun by `shutdown` has finished (None: none begun)."""
        self._before: set[int] | None = None
        """This process's children before the first engine was made (not the engine's)."""

    @property
    def ready(self) -> bool:
        """True when completions can be served."""
        if self.engine is not None and self.state is EngineState.READY:
            health = self.engine.health()
            if health.state is not EngineState.READY:
                self._set(health.state, health.message)
        return self.state is EngineState.READY

    def _set(self, state: EngineState, message: str) -> None:
        self.state, self.message = state, message
        try:
            self._on_status(state, message)
        except Exception:
            log.exception("status callback failed")

    def start(self, config: EngineConfig) -> asyncio.Task[None]:
        """Begin loading in the background; returns the loading task."""
        if self._task is None:
            if self._before is None:
                self._before = child_pids()
            self.state = EngineState.LOADING
            self._task = asyncio.ensure_future(self._load(config))
            self._watch = asyncio.ensure_future(self._watchdog(config))
        return self._task

    async def _watchdog(self, config: EngineConfig) -> None:
        """Notice an engine that died after it was ready, and restart it with backoff."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self._task is not None and not self._task.done():
                continue
            engine = self.engine
            if engine is None or (self.state is EngineState.FAILED and self.load_seconds is None):
                continue  # never started: a configuration problem, not a crash
            if self.state is EngineState.READY and engine.health().state is EngineState.READY:
                continue
            await self._restart(config)

    async def _restart(self, config: EngineConfig) -> None:
        for attempt in range(1, MAX_RESTARTS + 1):
            self.restarts += 1
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (attempt - 1))
            log.warning("engine stopped; restart %d of %d in %.0f s", attempt, MAX_RESTARTS, delay)
            self._set(
                EngineState.LOADING,
                f"The engine stopped unexpectedly; restarting (attempt {attempt})",
            )
            old, self.engine = self.engine, None
            if old is not None:
                try:
                    await in_daemon_thread(old.shutdown)
                except Exception:
                    log.exception("shutdown of the dead engine failed")
            await asyncio.sleep(delay)
            self._task = asyncio.ensure_future(self._load(config))
            await asyncio.shield(self._task)
            if self.state is EngineState.READY:
                return
        self._set(
            EngineState.FAILED,
            f"The engine stopped and did not restart after {MAX_RESTARTS} attempts; "
            "restart the language server.",
        )

    async def _load(self, config: EngineConfig) -> None:
        t0 = time.monotonic()
        self._set(EngineState.LOADING, "Loading model")
        try:
            model = await in_daemon_thread(resolve_model, config, self._set)
            target = _short(model) if model else "the server's model"
            where = f" at {display_url(config.openai.url or '')}" if config.remote else ""
            self._set(EngineState.LOADING, f"Starting the engine for {target}{where}")
            engine = self._factory(config, model)
            self.engine = engine
            await in_daemon_thread(engine.start)
        except (InferenceError, _prepare_error()) as err:
            log.error("engine start failed: %s", err)
            self._set(EngineState.FAILED, str(err))
            return
        except Exception as err:
            log.exception("engine start failed")
            self._set(EngineState.FAILED, f"The model engine failed to start: {type(err).__name__}")
            return
        self.load_seconds = time.monotonic() - t0
        self._set(EngineState.READY, f"Model ready in {self.load_seconds:.1f} s")

    async def wait(self) -> None:
        """Wait for the background load to finish (ready or failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def shutdown(self) -> None:
        """Stop the engine and its processes."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            # Let a half-started engine finish starting, so that it can be stopped cleanly.
            await asyncio.wait([task], timeout=300)
        engine, self.engine = self.engine, None
        if engine is not None:
            self._stopped = stopped = threading.Event()
            # A thread of its own, not the loop's executor: leaving the loop (after `exit`)
            # cancels this task, and a stop still queued in the executor would never run.
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()

            def run() -> None:
                _stop(engine, stopped)
                with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                    loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

            threading.Thread(target=run, name="moe-engine-stop", daemon=True).start()
            await done
        self.state = EngineState.STOPPED

    def shutdown_blocking(self, timeout: float = STOP_WAIT_SECONDS) -> list[int]:
        """Stop the engine from outside the event loop (leaving the process, a signal), within
        `timeout` s: a stop already under way is waited for, and then every process the engine
        started that is still there is ended (SIGTERM, then SIGKILL). Returns the pids that
        had to be ended. A start still under way is not waited for."""
        deadline = time.monotonic() + timeout
        engine, self.engine = self.engine, None
        if engine is not None:
            self._stopped = stopped = threading.Event()
            threading.Thread(
                target=_stop, args=(engine, stopped), name="moe-engine-stop", daemon=True
            ).start()
        if self._stopped is not None and not self._stopped.wait(deadline - time.monotonic()):
            log.warning("the engine did not stop within %.0f s; ending its processes", timeout)
        if self._before is None:
            return []  # no engine was ever started here
        ended = end_processes(child_pids() - self._before)
        # A process started while the others were being ended (a load under way spawns
        # them one after another) is ended too.
        ended += end_processes(child_pids() - self._before - set(ended))
        if ended:
            log.info("ended engine processes %s", ", ".join(map(str, ended)))
        return ended


async def in_daemon_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a daemon thread of its own. Unlike `asyncio.to_thread`, leaving the event
    loop does not wait for it: `exit` during a model load that takes a minute leaves at once."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if not done.done():
            if ok:
                done.set_result(value)  # type: ignore[arg-type]
            else:
                done.set_exception(value)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result: object = fn(*args)
            ok = True
        except BaseException as err:  # handed to the awaiting task
            result, ok = err, False
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=run, name=f"moe-{getattr(fn, '__name__', 'work')}", daemon=True).start()
    return await done


def _stop(engine: StartableEngine, stopped: threading.Event) -> None:
    try:
        engine.shutdown()
    except Exception:
        log.exception("engine shutdown failed")
    finally:
        stopped.set()


def _prepare_error() -> type[Exception]:
    from moe_lsp.inference.model_store import ModelPrepareError

    return ModelPrepareError


def _short(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1]
