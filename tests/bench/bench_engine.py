"""The engine settings of a bench or eval run: the model, and a config file's engine settings
when $MOE_LSP_BENCH_CONFIG names one (`make gpu-check CONFIG=…`: tensor parallelism and the
like for a large model)."""

from __future__ import annotations

import os
from pathlib import Path

from moe_lsp.inference.config import EngineConfig

BENCH_CONFIG_ENV = "MOE_LSP_BENCH_CONFIG"
"""A moe-lsp config file (TOML) whose engine settings bench and eval runs use."""


def bench_engine(model: str | None) -> EngineConfig:
    """EngineConfig with `model` over the engine settings of $MOE_LSP_BENCH_CONFIG (if set);
    SystemExit naming the file's problems when it cannot be used."""
    from moe_lsp.lsp.config_file import load

    path = os.environ.get(BENCH_CONFIG_ENV)
    base = EngineConfig()
    if path:
        file = load(Path(path).expanduser(), use_default=False)
        if not file.found or file.problems:
            problems = "; ".join(file.problems) or "not found"
            raise SystemExit(f"{BENCH_CONFIG_ENV}={path}: {problems}")
        base = file.settings.engine
    return base.merged({"model": model}) if model is not None else base
