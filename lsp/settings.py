"""Server settings: declared once (type, range, default), checked the same way from every source."""

from __future__ import annotations

import functools
import json
import math
import typing
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any

from moe_lsp.inference.config import EngineConfig, wire_name
from moe_lsp.inference.errors import EngineConfigError
from moe_lsp.prompts.builder import Budget
from moe_lsp.prompts.profiles import PROFILES
from moe_lsp.prompts.secrets import redact

from .memory import DEFAULT_BUDGET_BYTES

_BUDGET = Budget()
"""The prompt budget's defaults are the context engine's (prompts/builder.py `Budget`)."""


class SettingsError(ValueError):
    """Settings hold a value the server cannot use (the message names the key and the rule)."""


def setting(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    choices: tuple[str, ...] = (),
) -> Any:
    """A setting's declaration: its default and the accepted range (inclusive; a string's
    length), or the accepted strings."""
    return field(
        default=default, metadata={"low": low, "high": high, "unit": unit, "choices": choices}
    )


@dataclass(frozen=True)
class CompletionSettings:
    """How completions are built and bounded. Each field is one setting under `completion`
    (camelCase on the wire); its type and range are declared here and nowhere else."""

    prompt_budget: int = setting(_BUDGET.total, 64, 65536, " tokens")
    """Tokens of code (current file and other open files) in a prompt."""
    context_share: float = setting(_BUDGET.context_share, 0.0, 0.9)
    """Share of the budget for other open files (definitions and similar code)."""
    suffix_share: float = setting(_BUDGET.suffix_share, 0.0, 0.9)
    """Share of the current file's tokens for text after the cursor (FIM models)."""
    window_step_lines: int = setting(_BUDGET.step_lines, 1, 1024, " lines")
    """The prompt window's start moves in steps of this many lines (prefix-cache hits)."""
    max_context_documents: int = setting(20, 0, 1000, " documents")
    """Most recently edited open documents searched for context."""
    profile: str = setting("auto", choices=("auto", *(p.name for p in PROFILES)))
    """Prompt format: 'auto' (from the tokenizer's special tokens) or a profile name, e.g.
    'qwen-fim', 'deepseek-fim', 'starcoder-fim', 'codellama-fim', 'codestral-fim',
    'prefix-only', 'chat-infill'."""
    max_tokens_single: int = setting(_BUDGET.max_tokens_single, 1, 1024, " tokens")
    """Generation limit for a single-line completion."""
    max_tokens_multi: int = setting(_BUDGET.max_tokens_multi, 1, 4096, " tokens")
    """Generation limit for a multi-line completion."""
    debounce_floor_ms: float = setting(0.0, 0, 2000, " ms")
    """Least wait before asking the model for ghost text."""
    debounce_ceiling_ms: float = setting(120.0, 0, 2000, " ms")
    """Most wait; the wait adapts to the typing rhythm (none after a pause)."""
    timeout_seconds: float = setting(10.0, 0.1, 300, " s")
    """A completion still running after this long is stopped and its text so far returned."""
    syntax_stop: bool = setting(True)
    """Stop the engine as soon as the completion is whole (its line, or its block by the
    indentation rules and tree-sitter); off: generate to the token limit, then cut."""
    hot_streak_tokens: int = setting(96, 0, 1024, " tokens")
    """Single-line ghost text at a line's end: answer with the first line, keep generating up
    to this many tokens of the following lines for the next requests (0: off)."""
    first_line_budget_ms: float = setting(1500.0, 0, 600_000, " ms")
    """A multi-line ghost text still running after this long is answered with its whole lines
    so far; the rest keeps coming for the next request."""
    first_answer_chars: int = setting(0, 0, 1000, " characters")
    """Ghost text at a line's end whose line is still being written is shown early, cut after
    its last whole token group, once the line holds this many characters (0: whole lines
    only); the rest of the line comes on the next keystrokes from the same generation."""
    adopt_grace_ms: float = setting(500.0, 0, 10000, " ms")
    """A generation whose request the client cancelled runs this long more: an editor cancels
    the old request on a keystroke and then asks again, and that request adopts it if the text
    agrees (0: aborted at once)."""
    stream_ghost_text: bool = setting(False)
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
    """Everything the server reads from its config file, command line and the client."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    """Engine settings: the backend ('vllm' in this process, or 'openai': a remote server at
    `engine.url`), the model, and each backend's own knobs (flat on the wire)."""
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    """Prompt and generation bounds."""
    log_prompts: bool = setting(False)
    """Write prompt and completion text to the log (off: logs hold no code)."""
    memory_budget_bytes: int = setting(DEFAULT_BUDGET_BYTES, 16 << 20, 1 << 40, " bytes")
    """Memory for the session's open documents and their syntax trees: the trees of documents
    edited longest ago are dropped first (those complete as plain text), then documents."""

    def apply(
        self, options: Any, where: str = "", defaults: ServerSettings | None = None
    ) -> tuple[ServerSettings, list[str]]:
        """These settings with every good value of `options` applied, and one message for each
        value that was not (that setting keeps its current value). Never raises.

        `null` for a completion setting, `logPrompts` or `memoryBudgetBytes` puts back its value
        in `defaults` (the built-in default when none are given): an editor whose user unset a
        key says so without restarting the server. `where` names the source in messages
        ('config file ~/.config/moe-lsp/config.toml')."""
        base = defaults if defaults is not None else ServerSettings()
        problems: list[str] = []
        if options is None or options == {}:
            return self, problems
        if not isinstance(options, dict):
            return self, [f"{_source(where)}settings must be an object, not {_show(options)}."]
        result = self
        for key, value in options.items():
            name = snake(str(key))
            if name == "token":
                continue  # the shared TCP token, checked by the protocol; never kept or logged
            if name == "engine":
                engine, problem = _apply_engine(result.engine, value)
                result = replace(result, engine=engine)
            elif name == "completion":
                completion, more = _apply_fields(
                    result.completion, value, "completion.", base.completion
                )
                result = replace(result, completion=completion)
                problems += [_source(where) + p for p in more]
                continue
            elif name in _TOP:
                result, problem = _apply_one(result, _TOP[name], value, "", base)
            elif name in _COMPLETION:
                problem = (
                    f"Unknown setting {_name(key)}: completion settings go under 'completion' "
                    f"(completion.{wire_name(name)})."
                )
            else:
                problem = f"Unknown setting {_name(key)}."
            if problem:
                problems.append(_source(where) + problem)
        return result, [_one_line(p) for p in problems]

    def merged(self, options: Any) -> ServerSettings:
        """These settings overridden by `options`; SettingsError (naming every bad value) if
        any value could not be used."""
        result, problems = self.apply(options)
        if problems:
            raise SettingsError(" ".join(problems))
        return result

    def wire(self) -> dict[str, Any]:
        """Every setting as `dotted.camelCase` key -> value (the engine's flat, as on the wire)."""
        out: dict[str, Any] = {}
        e = self.engine
        for part in (e, e.vllm, e.openai):
            for f in fields(part):
                if f.name not in ("vllm", "openai"):
                    out["engine." + wire_name(f.name)] = getattr(part, f.name)
        for f in fields(self.completion):
            out["completion." + wire_name(f.name)] = getattr(self.completion, f.name)
        out["logPrompts"] = self.log_prompts
        out["memoryBudgetBytes"] = self.memory_budget_bytes
        return out


_COMPLETION: dict[str, Field[Any]] = {f.name: f for f in fields(CompletionSettings)}
_TOP: dict[str, Field[Any]] = {
    f.name: f for f in fields(ServerSettings) if f.name in ("log_prompts", "memory_budget_bytes")
}


@functools.cache
def _hints(owner: type) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def snake(key: str) -> str:
    """The snake_case field name of a camelCase, snake_case or kebab-case key."""
    return "".join("_" + c.lower() if c.isupper() else c for c in key).replace("-", "_")


def describe(f: Field[Any], owner: type = CompletionSettings) -> str:
    """The accepted values of a setting, as messages and the README say them."""
    kind = _hints(owner)[f.name]
    low, high, unit = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("unit", "")
    if kind is bool:
        return "true or false"
    if f.metadata.get("choices"):
        return "one of " + ", ".join(f"'{c}'" for c in f.metadata["choices"])
    if kind is str:
        return f"a string of {low:g} to {high:g} characters" if high is not None else "a string"
    noun = "a whole number" if kind is int else "a number"
    if low is None:
        return noun
    return f"{noun} from {_g(low)} to {_g(high)}{unit}"


def _g(number: float) -> str:
    """A bound as people read it: 64, 0.9, 16777216 (not 1.67772e+07)."""
    return str(number) if isinstance(number, int) and number >= 10**6 else f"{number:g}"


def check(f: Field[Any], value: Any, owner: type = CompletionSettings) -> Any:
    """`value` as the setting `f` holds it; SettingsError (saying what is accepted) if it
    does not fit the declared type and range. Strings are never read as booleans or numbers."""
    kind = _hints(owner)[f.name]
    low, high = f.metadata.get("low"), f.metadata.get("high")
    ok = False
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)  # 512.0 from a JSON writer that has only floats
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value))
        )
    elif kind is str:
        ok = isinstance(value, str)
    if ok and f.metadata.get("choices"):
        ok = value in f.metadata["choices"]
    elif ok and low is not None and high is not None:
        size = len(value) if isinstance(value, str) else value
        ok = low <= size <= high
    if not ok:
        hint = " (write it without quotes)" if _looks_like(value, kind) else ""
        raise SettingsError(f"must be {describe(f, owner)}{hint}")
    return float(value) if kind is float else value


def _looks_like(value: Any, kind: Any) -> bool:
    """True for a string that spells a value of `kind` ("false", "50"): never read as one."""
    if not isinstance(value, str) or kind is str:
        return False
    text = value.strip().lower()
    if kind is bool:
        return text in ("true", "false", "yes", "no", "on", "off", "0", "1")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _apply_one(
    obj: Any, f: Field[Any], value: Any, prefix: str, base: Any
) -> tuple[Any, str | None]:
    """`obj` with one setting applied (`None` puts back `base`'s value), or `obj` and the
    message saying why not."""
    if value is None:
        return replace(obj, **{f.name: getattr(base, f.name)}), None
    try:
        return replace(obj, **{f.name: check(f, value, type(obj))}), None
    except SettingsError as err:
        key = prefix + wire_name(f.name)
        kept = _show(getattr(obj, f.name))
        return obj, f"{key} = {_show(value)} was not applied: it {err}; keeping {kept}."


def _apply_fields(obj: Any, values: Any, prefix: str, base: Any) -> tuple[Any, list[str]]:
    """`obj` with each good value applied, and the messages."""
    if not isinstance(values, dict):
        return obj, [f"{prefix.rstrip('.')} must be an object, not {_show(values)}; ignored."]
    problems: list[str] = []
    for key, value in values.items():
        f = _COMPLETION.get(snake(str(key)))
        if f is None:
            problems.append(f"Unknown completion setting {_name(key)}.")
            continue
        obj, problem = _apply_one(obj, f, value, prefix, base)
        if problem:
            problems.append(problem)
    return obj, problems


def _apply_engine(engine: EngineConfig, value: Any) -> tuple[EngineConfig, str | None]:
    """The engine settings with `value` applied as a whole, or unchanged and why not."""
    if not isinstance(value, dict):
        return engine, f"engine must be an object, not {_show(value)}; ignored."
    bad = _non_finite(value)
    if bad is not None:
        return engine, f"engine.{bad} must be a finite number; engine settings kept as they were."
    try:
        return engine.merged(value), None
    except EngineConfigError as err:
        return engine, f"{err} Engine settings kept as they were."
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        return engine, f"engine settings not applied ({type(err).__name__}); kept as they were."


def _non_finite(data: dict[str, Any], prefix: str = "") -> str | None:
    """The key of a NaN or infinite number in `data` (one level of nesting), if any."""
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            return prefix + str(key)
        if isinstance(value, dict) and not prefix:
            found = _non_finite(value, f"{key}.")
            if found:
                return found
    return None


def _source(where: str) -> str:
    return f"{where}: " if where else ""


_SHOWN_CHARS = 60
"""Longest value quoted in a message."""


def _one_line(message: str) -> str:
    """`message` with any control or line-separator character escaped: a log line stays one."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in message)


def _name(key: Any) -> str:
    """A setting's name as a message shows it: quoted, redacted, cut (`_one_line` escapes it)."""
    return "'" + _cut(redact(str(key))) + "'"


def _cut(text: str) -> str:
    """`text`, cut to `_SHOWN_CHARS` characters."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _show(value: Any) -> str:
    """A short JSON-like rendering of a value for a message (never raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number too large to use"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return _cut(redact(text))  # a token pasted into the wrong setting stays out of logs


def declared() -> list[tuple[str, Field[Any], type]]:
    """Every client setting as (wire key, its declaration, the class declaring it)."""
    out = [("completion." + wire_name(f.name), f, CompletionSettings) for f in _COMPLETION.values()]
    out += [(wire_name(f.name), f, ServerSettings) for f in _TOP.values()]
    return out
