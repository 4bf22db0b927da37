"""The user config file (`~/.config/moe-lsp/config.toml`, XDG-aware) and the state folder's
default log file: where they are, and the file read with the settings' typed rules."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from moe_lsp.inference.config import wire_name

from .settings import ServerSettings, check, setting, snake

CONFIG_ENV = "MOE_LSP_CONFIG"
"""A config file to read instead of the user's (empty: none)."""
MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is not read."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/moe-lsp`, else `~/.config/moe-lsp`."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".config"
    return root / "moe-lsp"


def config_path() -> Path | None:
    """The config file read at start: `$MOE_LSP_CONFIG` if set (empty: none), else
    `config.toml` in `config_dir()`."""
    override = os.environ.get(CONFIG_ENV)
    if override is not None:
        return Path(override).expanduser() if override else None
    return config_dir() / "config.toml"


def state_dir() -> Path:
    """`$XDG_STATE_HOME/moe-lsp`, else `~/.local/state/moe-lsp`."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "moe-lsp"


def default_log_file() -> Path:
    """Where the server writes its log by default (besides stderr)."""
    return state_dir() / "server.log"


@dataclass(frozen=True)
class ServerOptions:
    """Settings of the server process only (command line and config file, never a client)."""

    log_level: str = setting("INFO", 4, 7, " characters")
    """DEBUG, INFO, WARNING or ERROR."""
    log_file: str = setting("", 0, 4096, " characters")
    """Where the log goes instead of stderr and the default file ('-': stderr only)."""


SERVER_KEYS = {f.name: f for f in fields(ServerOptions)}


@dataclass
class FileConfig:
    """What a config file set, and what it could not."""

    path: Path | None
    found: bool = False
    settings: ServerSettings = field(default_factory=ServerSettings)
    """The defaults with the file's good values applied."""
    options: ServerOptions = field(default_factory=ServerOptions)
    keys: set[str] = field(default_factory=set)
    """Wire keys the file set (`completion.debounceFloorMs`, `engine.model`, `logLevel`)."""
    problems: list[str] = field(default_factory=list)
    """One message per value not applied (or for a file that could not be read)."""


def load(path: Path | None = None, *, use_default: bool = True) -> FileConfig:
    """Read the config file (`config_path()` by default). Never raises: a file that is
    missing is no problem; one that cannot be read or parsed is ignored with one message;
    each bad value is one message and keeps its default."""
    if path is None and use_default:
        path = config_path()
    out = FileConfig(path)
    if path is None or not path.exists():
        return out
    where = f"config file {path}"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            out.problems.append(f"{where} is over {MAX_CONFIG_BYTES} bytes; ignored.")
            return out
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        out.problems.append(f"{where} is not valid TOML ({err}); ignored.")
        return out
    except (OSError, UnicodeDecodeError) as err:
        out.problems.append(f"{where} cannot be read ({type(err).__name__}); ignored.")
        return out
    out.found = True
    rest: dict[str, Any] = {}
    for key, value in data.items():
        name = snake(key)
        if name in SERVER_KEYS:
            f = SERVER_KEYS[name]
            try:
                value = check(f, value, ServerOptions)
                if name == "log_level" and value.upper() not in LOG_LEVELS:
                    raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
            except ValueError as err:
                out.problems.append(
                    f"{where}: {wire_name(name)} = {value!r} was not applied: {err}."
                )
                continue
            out.options = replace(out.options, **{name: value})
            out.keys.add(wire_name(name))
        elif name == "engine" and isinstance(value, dict):
            rest[key] = _snake_keys(value)  # kebab-case, as TOML files often write keys
        else:
            rest[key] = value
    before = ServerSettings().wire()
    out.settings, problems = ServerSettings().apply(rest, where)
    out.problems += problems
    after = out.settings.wire()
    out.keys |= {
        k
        for k in after
        if after[k] != before[k] or (_named(rest, k) and not any(_mentions(p, k) for p in problems))
    }
    return out


def _named(data: dict[str, Any], key: str) -> bool:
    """True when `data` spells the wire key `key` (a good value equal to the default)."""
    head, _, rest = key.partition(".")
    if not rest:
        return any(snake(k) == snake(head) for k in data)
    part = next((v for k, v in data.items() if snake(k) == head), None)
    return isinstance(part, dict) and any(snake(k) == snake(rest) for k in part)


def _mentions(problem: str, key: str) -> bool:
    """True when `problem` is about `key` (or about the engine part `key` belongs to)."""
    return key in problem or (key.startswith("engine.") and "engine" in problem.lower())


def _snake_keys(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with snake_case keys, one level of nested tables too (`[engine.vllm]`)."""
    return {
        snake(k): _snake_keys(v) if isinstance(v, dict) and snake(k) in ("vllm", "openai") else v
        for k, v in data.items()
    }
