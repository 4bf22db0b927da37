"""Builds the engine the configuration names: in-process vLLM or a remote OpenAI server."""

from __future__ import annotations

from .config import EngineConfig
from .engine import StartableEngine


def create_engine(config: EngineConfig, model_dir: str) -> StartableEngine:
    """The engine for `config.backend`, not started. `model_dir` is the vLLM model folder (or
    hub id); for the remote backend it is the served model's name ('' to ask the server)."""
    if config.backend == "openai":
        from .openai_engine import OpenAIEngine

        return OpenAIEngine(config, model_dir)
    from .vllm_engine import VllmEngine

    return VllmEngine(config, model_dir)
