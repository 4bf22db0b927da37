"""Server settings: typed, defaulted, read from initializationOptions (camelCase on the wire)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.errors import EngineConfigError
from moe_lsp.prompts.builder import Budget

_BUDGET = Budget()
"""The prompt budget's defaults are the context engine's (prompts/builder.py `Budget`)."""


class SettingsError(ValueError):
    """initializationOptions hold a value the server cannot use."""


@dataclass(frozen=True)
class CompletionSettings:
    """How completions are built and bounded."""

    prompt_budget: int = _BUDGET.total
    """Tokens of code (current file and other open files) in a prompt."""
    context_share: float = _BUDGET.context_share
    """Share of the budget for other open files (definitions and similar code)."""
    suffix_share: float = _BUDGET.suffix_share
    """Share of the current file's tokens for text after the cursor (FIM models)."""
    window_step_lines: int = _BUDGET.step_lines
    """The prompt window's start moves in steps of this many lines (prefix-cache hits)."""
    max_context_documents: int = 20
    """Most recently edited open documents searched for context."""
    profile: str = "auto"
    """Prompt format: 'auto' (from the tokenizer's special tokens) or a profile name, e.g.
    'qwen-fim', 'deepseek-fim', 'starcoder-fim', 'codellama-fim', 'codestral-fim',
    'prefix-only', 'chat-infill'."""
    max_tokens_single: int = _BUDGET.max_tokens_single
    """Generation limit for a single-line completion."""
    max_tokens_multi: int = _BUDGET.max_tokens_multi
    """Generation limit for a multi-line completion."""
    debounce_floor_ms: float = 0.0
    """Least wait before asking the model for ghost text."""
    debounce_ceiling_ms: float = 120.0
    """Most wait; the wait adapts to the typing rhythm (none after a pause)."""
    timeout_seconds: float = 10.0
    """A completion still running after this long is stopped and its text so far returned."""
    syntax_stop: bool = True
    """Stop the engine as soon as the completion is whole (its line, or its block by the
    indentation rules and tree-sitter); off: generate to the token limit, then cut."""
    hot_streak_tokens: int = 96
    """Single-line ghost text at a line's end: answer with the first line, keep generating up
    to this many tokens of the following lines for the next requests (0: off)."""
    first_line_budget_ms: float = 1500.0
    """A multi-line ghost text still running after this long is answered with its whole lines
    so far; the rest keeps coming for the next request."""
    stream_ghost_text: bool = False
    """Send `moe/ghostText` notifications with the growing ghost text (for clients that render
    a stream)."""

    def budget(self) -> Budget:
        """The prompt budget these settings describe."""
        return Budget(
            total=self.prompt_budget,
            context_share=self.context_share,
            suffix_share=self.suffix_share,
            step_lines=self.window_step_lines,
            max_tokens_single=self.max_tokens_single,
            max_tokens_multi=self.max_tokens_multi,
        )


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server reads from its command line and initializationOptions."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    """Engine settings: the backend ('vllm' in this process, or 'openai': a remote server at
    `engine.url`), the model, and each backend's own knobs (flat on the wire)."""
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    """Prompt and generation bounds."""
    log_prompts: bool = False
    """Write prompt and completion text to the log (off: logs hold no code)."""

    def merged(self, options: Any) -> ServerSettings:
        """These settings overridden by a client's initializationOptions dict."""
        if not options:
            return self
        if not isinstance(options, dict):
            raise SettingsError("initializationOptions must be an object.")
        result = self
        for key, value in options.items():
            if key == "engine":
                if not isinstance(value, dict):
                    raise SettingsError("initializationOptions.engine must be an object.")
                try:
                    result = replace(result, engine=result.engine.merged(value))
                except EngineConfigError as err:
                    raise SettingsError(str(err)) from err
            elif key == "completion":
                if not isinstance(value, dict):
                    raise SettingsError("initializationOptions.completion must be an object.")
                names = {f.name for f in fields(CompletionSettings)}
                patch2: dict[str, Any] = {}
                for k, v in value.items():
                    if _snake(k) not in names:
                        raise SettingsError(f"Unknown completion setting '{k}'.")
                    patch2[_snake(k)] = v
                result = replace(result, completion=replace(result.completion, **patch2))
            elif key == "token":
                continue  # the shared TCP token, checked by the protocol; never kept or logged
            elif key == "logPrompts":
                result = replace(result, log_prompts=bool(value))
            else:
                raise SettingsError(f"Unknown setting '{key}'.")
        return result


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)
