"""Tables of cases for the engine configuration: wire keys, types, ranges, backends, factory."""

from __future__ import annotations

import pytest

from moe_lsp.inference.config import EngineConfig, OpenAIConfig, VllmConfig, wire_name
from moe_lsp.inference.errors import EngineConfigError
from moe_lsp.inference.factory import create_engine
from moe_lsp.inference.openai_engine import OpenAIEngine
from moe_lsp.inference.vllm_engine import VllmEngine
from moe_lsp.lsp.engine_host import resolve_model


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        # wrong types
        ({"maxModelLen": "4096"}, "engine.maxModelLen must be a whole number, not the string"),
        ({"maxModelLen": 4096.5}, "engine.maxModelLen must be a whole number"),
        ({"maxModelLen": 2048.0}, "engine.maxModelLen must be a whole number"),
        ({"maxModelLen": True}, "engine.maxModelLen must be a whole number"),
        ({"kvCacheGib": [1]}, "engine.kvCacheGib must be a number"),
        ({"kvCacheGib": False}, "engine.kvCacheGib must be a number"),
        ({"dtype": 16}, "engine.dtype must be a string"),
        ({"model": 3}, "engine.model must be a string"),
        ({"speculativeConfig": "ngram"}, "engine.speculativeConfig must be an object"),
        ({"extraEngineArgs": []}, "engine.extraEngineArgs must be an object"),
        ({"url": "http://h", "readTimeout": "30"}, "engine.readTimeout must be a number"),
        ({"url": 8000}, "engine.url must be a string"),
        ({"vllm": 3}, "engine.vllm must be an object"),
        # strings that look like booleans
        ({"trustRemoteCode": "true"}, "trustRemoteCode must be true or false .*string 'true'"),
        ({"enforceEager": "false"}, "enforceEager must be true or false .*string 'false'"),
        ({"enableExpertParallel": "yes"}, "must be true or false .*string 'yes'"),
        ({"enableExpertParallel": 1}, "engine.enableExpertParallel must be true or false"),
        # wrong ranges and values
        ({"maxModelLen": 10}, "engine.maxModelLen must be at least 256 tokens"),
        ({"kvCacheGib": 0}, "engine.kvCacheGib must be a positive number"),
        ({"kvCacheGib": -1.5}, "engine.kvCacheGib must be a positive number"),
        ({"blockSize": 33}, "multiple of 16"),
        ({"blockSize": 0}, "multiple of 16"),
        ({"maxNumSeqs": 0}, "engine.maxNumSeqs must be at least 1"),
        ({"tensorParallelSize": 0}, "engine.tensorParallelSize must be at least 1"),
        ({"dataParallelSize": -2}, "engine.dataParallelSize must be at least 1"),
        ({"dtype": "int3"}, "Unknown dtype 'int3'"),
        ({"distributedExecutorBackend": "slurm"}, "distributedExecutorBackend 'slurm'"),
        ({"gpuMemoryUtilization": 1.5}, "gpuMemoryUtilization must be above 0 and at most 1"),
        ({"gpuMemoryUtilization": 0}, "gpuMemoryUtilization must be above 0"),
        ({"backend": "llamacpp"}, "engine.backend 'llamacpp' is not one of: vllm, openai"),
        ({"backend": "openai"}, "engine.backend 'openai' needs engine.url"),
        ({"url": "gpu-box:8000"}, "engine.url 'gpu-box:8000' is not an http"),
        ({"url": "ftp://h"}, "is not an http:// or https:// URL"),
        ({"url": "http://"}, "with a host"),
        ({"url": "http://h", "backend": "vllm"}, "set engine.backend to 'openai'"),
        ({"url": "http://h", "connectTimeout": 0}, "engine.connectTimeout must be a positive"),
        # unknown keys
        ({"kvCache": 1}, "Unknown engine setting 'kvCache'"),
        ({"openai": {"dtype": "auto"}}, r"Unknown engine setting 'openai\.dtype'"),
    ],
)
def test_bad_values_get_one_clear_message(wire: dict, message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        EngineConfig.from_wire(wire)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ({}, EngineConfig()),
        ({"kvCacheGib": 2}, EngineConfig(vllm=VllmConfig(kv_cache_gib=2))),
        ({"kv_cache_gib": 2}, EngineConfig(vllm=VllmConfig(kv_cache_gib=2))),
        ({"enforceEager": None}, EngineConfig()),
        ({"blockSize": None}, EngineConfig()),
        (
            {"url": "http://h:8000"},
            EngineConfig(backend="openai", openai=OpenAIConfig(url="http://h:8000")),
        ),
        (
            {"openai": {"url": "https://h", "apiKeyFile": "/k"}},
            EngineConfig(backend="openai", openai=OpenAIConfig(url="https://h", api_key_file="/k")),
        ),
        (
            {"url": "http://h", "kvCacheGib": 4},  # the other backend's knobs are kept, unused
            EngineConfig(
                backend="openai",
                vllm=VllmConfig(kv_cache_gib=4),
                openai=OpenAIConfig(url="http://h"),
            ),
        ),
    ],
)
def test_wire_keys_go_to_their_part(wire: dict, expected: EngineConfig) -> None:
    assert EngineConfig.from_wire(wire) == expected


@pytest.mark.parametrize(
    ("name", "wire"),
    [("kv_cache_gib", "kvCacheGib"), ("url", "url"), ("api_key_file", "apiKeyFile")],
)
def test_wire_name(name: str, wire: str) -> None:
    assert wire_name(name) == wire


@pytest.mark.parametrize(
    ("config", "model", "engine_type"),
    [
        (EngineConfig(), "/m", VllmEngine),
        (EngineConfig(backend="vllm", model="/x"), "/x", VllmEngine),
        (EngineConfig.from_wire({"url": "http://127.0.0.1:9"}), "", OpenAIEngine),
        (EngineConfig.from_wire({"url": "http://h/v1", "model": "qwen"}), "qwen", OpenAIEngine),
    ],
)
def test_factory_picks_the_backend(config: EngineConfig, model: str, engine_type: type) -> None:
    engine = create_engine(config, model)
    assert isinstance(engine, engine_type)
    assert engine.tokenizer is None and engine.chat_template is None
    assert engine.health().state == "stopped"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ({"url": "http://h"}, ""),
        ({"url": "http://h", "model": "served-name"}, "served-name"),
        ({"model": "/my/model"}, "/my/model"),
    ],
)
def test_resolve_model_never_prepares_for_a_remote_engine(wire: dict, expected: str) -> None:
    calls: list[str] = []
    assert resolve_model(EngineConfig.from_wire(wire), lambda s, m: calls.append(m)) == expected
    assert calls == []
