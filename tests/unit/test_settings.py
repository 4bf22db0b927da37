"""Tables of cases for settings and engine configuration: wire names, defaults, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from moe_lsp.inference.config import EngineConfig, VllmConfig, validate
from moe_lsp.inference.errors import EngineConfigError
from moe_lsp.inference.vllm_engine import CPU_SPECULATIVE, build_engine_args
from moe_lsp.lsp.settings import ServerSettings, SettingsError


@pytest.mark.parametrize(
    ("options", "check"),
    [
        (None, lambda s: s == ServerSettings()),
        ({"engine": {"kvCacheGib": 2}}, lambda s: s.engine.vllm.kv_cache_gib == 2),
        ({"engine": {"maxModelLen": 2048}}, lambda s: s.engine.vllm.max_model_len == 2048),
        (
            {"engine": {"tensorParallelSize": 2, "enableExpertParallel": True}},
            lambda s: (
                s.engine.vllm.tensor_parallel_size == 2 and s.engine.vllm.enable_expert_parallel
            ),
        ),
        ({"engine": {"vllm": {"blockSize": 64}}}, lambda s: s.engine.vllm.block_size == 64),
        (
            {"engine": {"url": "http://gpu:8000"}},
            lambda s: s.engine.backend == "openai" and s.engine.openai.url == "http://gpu:8000",
        ),
        (
            {"engine": {"backend": "openai", "url": "https://h/v1", "tokenizer": "/t"}},
            lambda s: s.engine.remote and s.engine.openai.tokenizer == "/t",
        ),
        (
            {"engine": {"url": "http://h:1", "apiKeyFile": "/k", "model": "qwen"}},
            lambda s: (s.engine.openai.api_key_file, s.engine.model) == ("/k", "qwen"),
        ),
        (
            {"engine": {"openai": {"readTimeout": 5}, "url": "http://h"}},
            lambda s: s.engine.openai.read_timeout == 5,
        ),
        ({"completion": {"promptBudget": 512}}, lambda s: s.completion.prompt_budget == 512),
        ({"logPrompts": True}, lambda s: s.log_prompts),
    ],
)
def test_merged(options, check) -> None:
    assert check(ServerSettings().merged(options))


def test_merge_keeps_earlier_engine_values() -> None:
    s = ServerSettings().merged({"engine": {"model": "/m", "dtype": "float32"}})
    s = s.merged({"engine": {"kvCacheGib": 3}})
    assert (s.engine.model, s.engine.vllm.dtype, s.engine.vllm.kv_cache_gib) == ("/m", "float32", 3)


def test_merge_keeps_the_url_when_a_client_tunes_the_remote_engine() -> None:
    s = ServerSettings().merged({"engine": {"url": "http://gpu:8000"}})
    s = s.merged({"engine": {"tokenizer": "/tok", "readTimeout": 60}})
    assert (s.engine.backend, s.engine.openai.url) == ("openai", "http://gpu:8000")
    assert (s.engine.openai.tokenizer, s.engine.openai.read_timeout) == ("/tok", 60)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": {"kvCache": 1}}, "Unknown engine setting 'kvCache'"),
        ({"engine": {"vllm": {"url": "http://h"}}}, r"Unknown engine setting 'vllm\.url'"),
        ({"engine": {"kvCacheGib": "2"}}, "kvCacheGib must be a number, not the string '2'"),
        ({"engine": {"backend": "openai"}}, "needs engine.url"),
        ({"engine": {"url": "http://h", "backend": "vllm"}}, "set engine.backend to 'openai'"),
        ({"engine": 3}, "engine must be an object"),
        ({"completion": {"budget": 1}}, "Unknown completion setting 'budget'"),
        ({"colour": "blue"}, "Unknown setting 'colour'"),
        ([1, 2], "must be an object"),
    ],
)
def test_merged_errors(options, message) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings().merged(options)


def vllm(**knobs: object) -> EngineConfig:
    """An EngineConfig with these vLLM knobs."""
    return EngineConfig(vllm=VllmConfig(**knobs))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (EngineConfig(vllm=VllmConfig(kv_cache_gib=100_000)), "Not enough memory"),
    ],
)
def test_validate_errors(model_dir: Path, config: EngineConfig, message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        validate(config, str(model_dir), on_cpu=True)


def test_validate_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EngineConfigError, match=r"does not exist; run `moe-lsp model prepare`"):
        validate(EngineConfig(), str(tmp_path / "nope"), on_cpu=True)


def test_validate_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(EngineConfigError, match=r"no config\.json"):
        validate(EngineConfig(), str(tmp_path), on_cpu=True)


def test_validate_ok(model_dir: Path) -> None:
    validate(EngineConfig(), str(model_dir), on_cpu=True)


@pytest.mark.parametrize(
    ("config", "on_cpu", "expected"),
    [
        (
            EngineConfig(),
            True,
            {
                "block_size": 32,
                "enforce_eager": True,
                "enable_prefix_caching": True,
                "scheduling_policy": "priority",
            },
        ),
        (EngineConfig(), False, {"enforce_eager": False, "dtype": "auto"}),
        (vllm(kv_cache_gib=1), False, {"kv_cache_memory_bytes": 1024**3}),
        (vllm(gpu_memory_utilization=0.8), False, {"gpu_memory_utilization": 0.8}),
        (
            vllm(tensor_parallel_size=4, enable_expert_parallel=True),
            False,
            {"tensor_parallel_size": 4, "enable_expert_parallel": True},
        ),
        (
            vllm(distributed_executor_backend="ray", pipeline_parallel_size=2),
            False,
            {"distributed_executor_backend": "ray", "pipeline_parallel_size": 2},
        ),
        (
            vllm(speculative_config={"method": "ngram", "num_speculative_tokens": 4}),
            False,
            {"speculative_config": {"method": "ngram", "num_speculative_tokens": 4}},
        ),
        (vllm(block_size=64), True, {"block_size": 64}),
        # n-gram speculative decoding by default on CPU only; {} turns it off
        (EngineConfig(), True, {"speculative_config": CPU_SPECULATIVE}),
        (vllm(speculative_config={}), True, {"speculative_config": None}),
        (EngineConfig(), False, {"speculative_config": None}),
    ],
)
def test_build_engine_args(config: EngineConfig, on_cpu: bool, expected: dict) -> None:
    args = build_engine_args(config, "/m", on_cpu=on_cpu)
    assert args["model"] == "/m"
    for key, value in expected.items():
        assert args.get(key) == value
    if not on_cpu:
        assert "block_size" not in args or config.vllm.block_size


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (-32603, "ValueError: /home/me/secret.py line 3", "moe-lsp hit an internal error"),
        (-32602, "Invalid params\n  File /x.py", "Invalid params"),
        (-32800, "Request with id 3 is canceled", "Request with id 3 is canceled"),
    ],
)
def test_client_safe_errors(code: int, message: str, expected: str) -> None:
    from lsprotocol.types import ResponseError

    from moe_lsp.lsp.protocol import client_safe

    out = client_safe(ResponseError(code=code, message=message, data={"traceback": ["..."]}))
    assert out.code == code
    assert out.message.startswith(expected)
    assert out.data is None
    assert "/home/me" not in out.message


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["serve"], lambda e: e.backend == "vllm" and e.openai.url is None),
        (
            ["serve", "--engine-url", "http://gpu:8000"],
            lambda e: (e.backend, e.openai.url) == ("openai", "http://gpu:8000"),
        ),
        (
            ["serve", "--engine-url", "http://h", "--engine-tokenizer", "/tok", "--model", "q"],
            lambda e: (e.openai.tokenizer, e.model) == ("/tok", "q"),
        ),
        (
            ["serve", "--engine-url", "http://h", "--engine-api-key-file", "/k"],
            lambda e: e.openai.api_key_file == "/k",
        ),
        (["serve", "--kv-cache-gib", "2"], lambda e: e.vllm.kv_cache_gib == 2),
        (["complete", "f.py", "--line", "1", "--column", "1", "--engine-url", "http://h"], None),
    ],
)
def test_command_line_engine_flags(argv: list[str], check) -> None:
    from moe_lsp.lsp.cli import _settings_from, build_parser

    args = build_parser().parse_args(argv)
    engine = _settings_from(args).engine
    assert check(engine) if check else engine.remote


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--engine-url", "gpu:8000"], "is not an http:// or https:// URL"),
        (["serve", "--max-model-len", "3"], "engine.maxModelLen must be at least 256"),
    ],
)
def test_command_line_engine_errors(argv: list[str], message: str, capsys) -> None:
    from moe_lsp.lsp.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err
