"""`moe-lsp config`: the effective configuration and where each value comes from."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from moe_lsp.inference.config import wire_name

from .config_file import CONFIG_ENV, FileConfig, ServerOptions, default_log_file, load
from .settings import ServerSettings, SettingsError

SOURCES = ("default", "file", "env", "flag")
"""Where a value can come from, lowest precedence first."""


def add_config_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    engine_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The `config` subcommand; it takes `serve`'s flags, to show what they would change."""
    p = sub.add_parser(
        "config",
        help="print the effective configuration and the source of each value",
        description="Print every setting `moe-lsp serve` would start with, as TOML, and where "
        "each value comes from: default < file (the config file) < env < flag. A client's "
        "initializationOptions and workspace settings come last, for completion settings.",
    )
    p.add_argument("--log-level", help="as for serve")
    p.add_argument("--log-file", help="as for serve")
    p.add_argument("--log-prompts", action="store_true", help="as for serve")
    p.add_argument("--json", action="store_true", help="one JSON object: key -> {value, source}")
    engine_flags(p)
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective configuration; 1 if the config file has problems (each named)."""
    from .cli import REMOTE_FLAGS, flag_engine

    file = load()
    rows = effective(file, args, flag_engine(args), REMOTE_FLAGS)
    if rows is None:
        return 2
    if args.json:
        print(json.dumps({k: {"value": v, "source": s} for k, (v, s) in rows.items()}, indent=2))
    else:
        print(f"# config file: {_file_state(file)}")
        width = min(48, max(len(f"{k} = {_toml(v)}") for k, (v, _) in rows.items()))
        for key, (value, source) in rows.items():
            print(f"{f'{key} = {_toml(value)}':<{width}}  # {source}")
    for problem in file.problems:
        print(f"moe-lsp: {problem}", file=sys.stderr)
    return 1 if file.problems else 0


def effective(
    file: FileConfig,
    args: argparse.Namespace,
    engine: dict[str, object],
    remote_flags: dict[str, tuple[str, str, str | None, str]],
) -> dict[str, tuple[Any, str]] | None:
    """Every key -> (value, source), in the order `serve` applies them; None (with a message
    on stderr) when a flag's value is refused."""
    env_names = {
        spec[0]
        for flag, spec in remote_flags.items()
        if spec[2] and getattr(args, flag, None) and getattr(args, flag) == os.environ.get(spec[2])
    }
    defaults = ServerSettings().wire()
    rows: dict[str, tuple[Any, str]] = {k: (v, "default") for k, v in defaults.items()}
    for key in file.keys & rows.keys():
        rows[key] = (file.settings.wire()[key], "file")
    layers = [
        ("env", {k: v for k, v in engine.items() if k in env_names}, False),
        ("flag", {k: v for k, v in engine.items() if k not in env_names}, args.log_prompts),
    ]
    settings = file.settings
    for source, part, log_prompts in layers:
        options: dict[str, Any] = {"engine": part} if part else {}
        if log_prompts:
            options["logPrompts"] = True
        before = settings.wire()
        try:
            settings = settings.merged(options)
        except SettingsError as err:
            print(f"moe-lsp: {err}", file=sys.stderr)
            return None
        named = {"engine." + wire_name(k) for k in part} | (
            {"logPrompts"} if log_prompts else set()
        )
        for key, value in settings.wire().items():
            if key in named or value != before[key]:
                rows[key] = (value, source)
    options = file.options
    for name, flag_value, fallback in (
        ("log_level", args.log_level, ServerOptions().log_level),
        ("log_file", args.log_file, str(default_log_file())),
    ):
        key = wire_name(name)
        if flag_value:
            rows[key] = (flag_value, "flag")
        elif key in file.keys:
            rows[key] = (getattr(options, name), "file")
        else:
            rows[key] = (fallback, "default" if name == "log_level" else "default (and stderr)")
    return rows


def _file_state(file: FileConfig) -> str:
    if file.path is None:
        return f"none (${CONFIG_ENV} is empty)"
    if file.found:
        return str(file.path)
    state = "not found" if not file.path.exists() else "not read"
    return f"{file.path} ({state})"


def _toml(value: Any) -> str:
    """A value as TOML writes it (None, which TOML lacks, as a comment-like `null`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return json.dumps(value)
