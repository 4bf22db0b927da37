"""The engine contract: token ids and sampling rules in, a stream of text deltas out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Sampling:
    """How to sample one completion."""

    max_tokens: int = 64
    """Upper bound on generated tokens."""
    temperature: float = 0.0
    """0 means greedy, the default for code completion."""
    top_p: float = 1.0
    """Nucleus sampling mass (ignored when greedy)."""
    stop: tuple[str, ...] = ()
    """Strings that end the completion (not included in the output)."""
    stop_token_ids: tuple[int, ...] = ()
    """Token ids that end the completion, besides the model's end-of-sequence token."""
    seed: int | None = None
    """Seed for reproducible sampling when temperature > 0."""
    allowed_token_ids: tuple[int, ...] = ()
    """When given, every generated token is one of these (constrained healing asks for one)."""


@dataclass(frozen=True)
class Delta:
    """A piece of generated text."""

    text: str
    """New text since the previous delta."""
    tokens: int
    """Number of new tokens behind `text`."""
    finished: bool = False
    """True on the last delta of the request."""
    finish_reason: str | None = None
    """'stop', 'length' or 'abort' on the last delta."""
    cached_tokens: int | None = None
    """Prompt tokens served from the prefix cache (reported once, on the first delta)."""
    token_ids: tuple[int, ...] = ()
    """Ids of the new tokens (engines that know them)."""


class EngineState(StrEnum):
    """Life cycle of an engine."""

    STOPPED = "stopped"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class EngineHealth:
    """Whether the engine can take requests, and why not."""

    state: EngineState
    message: str = ""


@dataclass
class EngineStats:
    """Counters of one engine since it started."""

    requests: int = 0
    finished: int = 0
    aborted: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    """Prompt tokens that hit the prefix cache."""
    generated_tokens: int = 0
    running: int = 0
    """Requests the engine itself still holds (not yet finished or aborted)."""
    load_seconds: float | None = None
    extra: dict[str, float | int | str] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """What the language server needs from an inference engine."""

    def stream(
        self, request_id: str, prompt_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[Delta]:
        """Generate from `prompt_ids`; closing the iterator aborts the request."""
        ...

    async def abort(self, request_id: str) -> None:
        """Stop a request; unknown or finished ids are ignored."""
        ...

    def health(self) -> EngineHealth:
        """Current state."""
        ...

    def stats(self) -> EngineStats:
        """Counters, including requests still running in the engine."""
        ...
