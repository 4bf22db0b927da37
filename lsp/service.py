"""The process-wide part of the server: engine host, prompt profile, server-wide metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.engine import EngineState
from moe_lsp.prompts.profiles import Profile, detect_profile, profile_by_name

from .engine_host import EngineFactory, EngineHost, StartableEngine, default_factory
from .metrics import Latencies

log = logging.getLogger(__name__)

StatusListener = Callable[[EngineState, str], None]
"""Told (state, message) on every change of the engine's state."""

COUNTERS = (
    "requested",
    "answered",
    "empty",
    "not_ready",
    "cancelled",
    "superseded",
    "stale",
    "from_cache",
    "shown",
    "accepted",
    "accepted_partially",
    "from_streak",
    "prefetched",
    "stopped_by_syntax",
    "failed",
    "throttled",
)
"""The counters each session keeps, and the service sums over all sessions."""
MAX_USERS = 1000
"""Users counted apart in the requests-per-user table."""


def choose_profile(
    tokens: Sequence[str],
    *,
    has_chat_template: bool,
    forced: str,
    embedded_model: bool,
    model_type: str | None = None,
) -> tuple[Profile, str | None]:
    """The prompt profile for a model, and a warning for the user (a bad forced name).

    Forced in settings when not 'auto'; the embedded default model is prefix-only (a base-style
    code model: its chat template exists, but a 135M model follows code, not instructions);
    else detected from the tokenizer's tokens, never from the model's name."""
    warning = None
    if forced != "auto":
        try:
            return profile_by_name(forced, list(tokens)), None
        except ValueError as err:
            warning = str(err)
    elif embedded_model:
        return profile_by_name("prefix-only", list(tokens)), None
    return detect_profile(
        list(tokens), has_chat_template=has_chat_template, model_type=model_type
    ), warning


def tokenizer_facts(engine: Any) -> tuple[list[str], bool]:
    """The special tokens of the engine's tokenizer and whether it has a chat template."""
    tokens = list(getattr(getattr(engine, "tokenizer", None), "special_tokens", []) or [])
    return tokens, getattr(engine, "chat_template", None) is not None


class Service:
    """One per process, shared by every session: the engine, how it is prompted, totals."""

    def __init__(self, factory: EngineFactory = default_factory) -> None:
        self.host = EngineHost(self._on_status, factory)
        self.profile: Profile | None = None
        self.forced_profile = "auto"
        """The `completion.profile` setting the profile is chosen with (the server's own)."""
        self.embedded_model = True
        """The engine runs the embedded default model (no `engine.model` given)."""
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        """Totals over all sessions."""
        self.latency = Latencies()
        """Latency samples of all sessions."""
        self.sessions: set[Any] = set()
        """Sessions open now (lsp/session.py registers and removes itself)."""
        self.requests_by_user: dict[str, int] = {}
        """Completion requests per user (the token's user name, or the local user)."""
        self.started = False
        self.profile_warning: str | None = None
        """Why the forced profile could not be used (told to the user once it is ready)."""
        self._listeners: list[StatusListener] = []

    # -- engine ---------------------------------------------------------------------------------
    def engine(self) -> StartableEngine | None:
        """The engine when it can take requests and a profile is chosen; else None."""
        engine = self.host.engine
        if not self.host.ready or engine is None or self.profile is None:
            return None
        return engine

    def start(self, config: EngineConfig, forced_profile: str = "auto") -> None:
        """Begin loading the engine in the background (once; later calls do nothing)."""
        if self.started:
            return
        self.started = True
        self.forced_profile = forced_profile
        self.embedded_model = config.model is None and not config.remote
        self.host.start(config)

    def listen(self, listener: StatusListener) -> Callable[[], None]:
        """Tell `listener` of engine state changes; returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _on_status(self, state: EngineState, message: str) -> None:
        if state is EngineState.READY and self.profile is None:
            self.choose_profile()
        for listener in list(self._listeners):
            try:
                listener(state, message)
            except Exception:
                log.exception("status listener failed")

    def choose_profile(self) -> str | None:
        """Pick the prompt profile for the loaded engine (logged); a warning for the user."""
        tokens, has_chat = tokenizer_facts(self.host.engine)
        self.profile, warning = choose_profile(
            tokens,
            has_chat_template=has_chat,
            forced=self.forced_profile,
            embedded_model=self.embedded_model,
            model_type=getattr(self.host.engine, "model_type", None),
        )
        self.profile_warning = warning
        if warning:
            log.warning("%s", warning)
        log.info("%s", self.profile.description)
        return warning

    # -- metrics --------------------------------------------------------------------------------
    def count(self, name: str, user: str = "", n: int = 1) -> None:
        """Add to a server-wide counter (completion requests also per user)."""
        self.counts[name] += n
        if name in ("requested", "from_streak", "from_cache") and user:
            if user in self.requests_by_user or len(self.requests_by_user) < MAX_USERS:
                self.requests_by_user[user] = self.requests_by_user.get(user, 0) + n

    def stats(self) -> dict[str, Any]:
        """The engine's state and the server-wide part of moe/stats."""
        return {
            "state": str(self.host.state),
            "message": self.host.message,
            "loadSeconds": self.host.load_seconds,
            "restarts": self.host.restarts,
            "profile": self.profile.name if self.profile else None,
        }

    def server_stats(self) -> dict[str, Any]:
        """Figures over every session: sessions, requests per user, requests in flight."""
        return {
            "sessions": len(self.sessions),
            "users": sorted({s.user for s in self.sessions if s.user}),
            "requestsByUser": dict(self.requests_by_user),
            "inFlight": sum(len(s.inflight) for s in self.sessions),
            "generating": sum(s.streaks.running() for s in self.sessions),
            "waitingForFirstToken": sum(s.streaks.waiting() for s in self.sessions),
            "counts": dict(self.counts),
            "latencyMs": self.latency.summary(),
        }
