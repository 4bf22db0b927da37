"""The engine contract: token ids and sampling rules in, a stream of text deltas out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
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
    skip_special_tokens: bool = True
    """Leave special tokens out of the text; a chat reply keeps them (`</think>` is one, and
    the reply after it is the answer)."""
    priority: int = 0
    """Scheduling priority, lower first: ghost text a user waits for is 0, a prefetch 1. The
    in-process engine schedules by it (vLLM `scheduling_policy="priority"`); a remote server
    is not sent it (vLLM refuses a priority unless the server was started with that policy)."""


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


ChatTemplate = Callable[[list[dict[str, str]]], str]
"""Renders chat messages with the model's template, the generation prompt added."""


class EngineTokenizer(Protocol):
    """The model's tokenizer as an engine offers it: encode/decode without adding special
    tokens, and the facts the prompt profiles read. Tokenizers that can list their vocabulary
    also have `vocabulary()` (see `VocabularyTokenizer`); constrained healing needs it."""

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens included verbatim."""
        ...

    def token_id(self, token: str) -> int | None:
        """Id of a single special or regular token, or None."""
        ...

    @property
    def special_tokens(self) -> list[str]:
        """Contents of the added tokens (FIM markers and the like: they pick a prompt profile)."""
        ...


class VocabularyTokenizer(EngineTokenizer, Protocol):
    """A tokenizer that can list every token (for constrained token healing)."""

    def vocabulary(self) -> list[tuple[int, str]]:
        """(id, text) of every token, each decoded on its own."""
        ...


@runtime_checkable
class Engine(Protocol):
    """What the language server needs from an inference engine. `tokenizer` and
    `chat_template` are set once `start()` has returned."""

    tokenizer: EngineTokenizer | None
    """The served model's tokenizer (None before the engine has started)."""
    chat_template: ChatTemplate | None
    """The model's chat template, or None when it has none (or it is unknown)."""

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


class StartableEngine(Engine, Protocol):
    """An engine the server can start and stop (both blocking: call them from a thread)."""

    def start(self) -> None:
        """Load the model or connect to the server; raises InferenceError with a user message."""
        ...

    def shutdown(self) -> None:
        """Stop and free the engine."""
        ...
