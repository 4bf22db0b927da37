"""The GPU paths, checked on CPU: engine arguments and environment on GPU, the free-memory
check and messages (vLLM 0.32's own texts), waiting for VRAM, hybrid-model prefix caching."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from moe_lsp.inference.config import EngineConfig, VllmConfig
from moe_lsp.inference.gpu import (
    DeviceMemory,
    engine_gpu,
    free_memory_problem,
    start_failure,
    vram,
    vram_wire,
    wait_for_vram,
)
from moe_lsp.inference.hybrid_cache import CacheFacts, cache_facts, expected_hit
from moe_lsp.inference.vllm_engine import _quiet_env, build_engine_args

GIB = 1024**3


def cfg(**vllm: object) -> EngineConfig:
    return EngineConfig(vllm=VllmConfig(**vllm))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "on_cpu", "present", "absent"),
    [
        # GPU, nothing set: vLLM's own share of memory, the checkpoint's dtype
        (cfg(), False, {"dtype": "auto"}, ("kv_cache_memory_bytes", "gpu_memory_utilization")),
        (cfg(), True, {"dtype": "bfloat16"}, ("kv_cache_memory_bytes",)),
        (cfg(dtype="float16"), False, {"dtype": "float16"}, ()),
        (cfg(kv_cache_gib=8), False, {"kv_cache_memory_bytes": 8 * GIB}, ()),
        (cfg(gpu_memory_utilization=0.7), False, {"gpu_memory_utilization": 0.7}, ()),
        (cfg(kv_cache_gib=4), True, {}, ("kv_cache_memory_bytes",)),  # CPU: an env variable
        (
            cfg(max_num_seqs=64, enforce_eager=True, distributed_executor_backend="mp"),
            False,
            {"max_num_seqs": 64, "enforce_eager": True, "distributed_executor_backend": "mp"},
            (),
        ),
        (
            cfg(speculative_config={"method": "nemotron_h_mtp", "num_speculative_tokens": 3}),
            False,
            {"speculative_config": {"method": "nemotron_h_mtp", "num_speculative_tokens": 3}},
            (),
        ),
    ],
)
def test_engine_args_on_gpu_and_cpu(
    config: EngineConfig, on_cpu: bool, present: dict, absent: tuple[str, ...]
) -> None:
    args = build_engine_args(config, "/m", on_cpu=on_cpu)
    for key, value in present.items():
        assert args[key] == value
    for key in absent:
        assert key not in args


ENV_KEYS = ("HF_HUB_OFFLINE", "VLLM_WORKER_MULTIPROC_METHOD", "VLLM_CPU_KVCACHE_SPACE")


@pytest.mark.parametrize(
    ("before", "on_cpu", "after"),
    [
        ({}, False, {"HF_HUB_OFFLINE": "1", "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}),
        (
            {"VLLM_WORKER_MULTIPROC_METHOD": "fork"},  # fork would leave orphans holding VRAM
            False,
            {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"},
        ),
        ({"HF_HUB_OFFLINE": "0"}, False, {"HF_HUB_OFFLINE": "0"}),  # the user's choice stays
        ({}, True, {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "VLLM_CPU_KVCACHE_SPACE": "1"}),
    ],
)
def test_engine_environment(
    before: dict[str, str],
    on_cpu: bool,
    after: dict[str, str],
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ENV_KEYS:  # set first, so that monkeypatch restores the state before the test
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    for key, value in before.items():
        monkeypatch.setenv(key, value)
    _quiet_env(cfg(), str(tmp_path), on_cpu)
    for key, value in after.items():
        assert os.environ[key] == value


def dev(free_gib: float, total_gib: float = 24.0, index: int = 0) -> DeviceMemory:
    return DeviceMemory(index, int(free_gib * GIB), int(total_gib * GIB))


@pytest.mark.parametrize(
    ("devices", "share", "expected"),
    [
        (None, None, None),  # CPU: nothing to check
        ([dev(23.5)], None, None),  # 0.92 x 24 = 22.1 GiB free needed
        ([dev(21.0)], None, "GPU 0 has 21.0 of 24.0 GiB free, and vLLM needs 0.92"),
        ([dev(21.0)], 0.8, None),
        ([dev(23.9), dev(10.0, index=1)], 0.8, "GPU 1 has 10.0 of 24.0 GiB free"),
    ],
)
def test_free_memory_check(
    devices: list[DeviceMemory] | None, share: float | None, expected: str | None
) -> None:
    problem = free_memory_problem(devices, share)
    if devices and len(devices) > 1:  # an engine on the first GPU only does not need the second
        assert free_memory_problem(devices, share, used=1) is None
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected)
        assert "gpuMemoryUtilization" in problem and "Free GPU memory" in problem


# The first lines vLLM 0.32 raises (vllm/v1/worker/utils.py, vllm/v1/core/kv_cache_utils.py)
FREE = (
    "ValueError: Free memory on device cuda:0 (20.1/23.6 GiB) on startup is less than "
    "desired GPU memory utilization (0.92, 21.7 GiB). Decrease GPU memory utilization or "
    "reduce GPU memory used by other processes."
)
NO_CACHE = "ValueError: No available memory for the cache blocks. Try increasing ..."
TOO_LONG = (
    "ValueError: To serve at least one request with the model's max seq len (262144), "
    "(24.0 GiB KV cache is needed, which is larger than the available KV cache memory (3.1 GiB)."
)


@pytest.mark.parametrize(
    ("text", "on_gpu", "expected"),
    [
        (FREE, True, "Not enough GPU memory"),
        (NO_CACHE, True, "Not enough GPU memory"),
        (TOO_LONG, True, "Not enough GPU memory"),
        ("torch.OutOfMemoryError: CUDA out of memory.", True, "Not enough GPU memory"),
        ("RuntimeError: Engine core initialization failed.", True, "the log above says why"),
        ("RuntimeError: Engine core initialization failed.", False, "failed to start"),
        ("ValueError: out of memory", False, "lower kvCacheGib or maxModelLen"),
        ("ValueError: bad", True, "The model engine failed to start: ValueError: bad"),
    ],
)
def test_start_failure_says_what_to_do(text: str, on_gpu: bool, expected: str) -> None:
    message = start_failure(text, on_gpu=on_gpu)
    assert expected in message
    if "GPU memory" in message:
        for advice in ("free GPU memory", "tensorParallelSize", "quantized checkpoint"):
            assert advice in message


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("readings", "freed", "polls"),
    [
        ([None], True, 0),  # no CUDA: nothing to wait for
        ([[dev(2)], [dev(10)], [dev(22)]], True, 2),  # freed on the third look
        ([[dev(21.9)]], True, 0),  # within the slack
        ([[dev(2)]] * 1000, False, 60),  # never freed: gives up at the deadline (30 s / 0.5 s)
    ],
)
def test_wait_for_vram(readings: list, freed: bool, polls: int) -> None:
    clock = Clock()
    seen = iter(readings)
    last: list = [readings[-1]]

    def read() -> list[DeviceMemory] | None:
        value = next(seen, last[0])
        return value

    ok = wait_for_vram([int(22 * GIB)], read=read, sleep=clock.sleep, clock=clock)
    assert ok is freed
    assert clock.now == pytest.approx(polls * 0.5)


def test_no_gpu_here_means_no_gpu_field() -> None:
    if vram() is not None:
        pytest.skip("this machine has a GPU")
    assert vram_wire(vram()) == {}
    assert engine_gpu(SimpleNamespace(gpu_memory=lambda: {})) == {}
    assert engine_gpu(object()) == {}


def test_gpu_field_shape() -> None:
    assert vram_wire([dev(3.5, 24)]) == {"gpu": [{"device": 0, "freeGib": 3.5, "totalGib": 24.0}]}

    def broken() -> dict:
        raise RuntimeError("nvml gone")

    assert engine_gpu(SimpleNamespace(gpu_memory=broken)) == {}


@pytest.mark.parametrize(
    ("facts", "prompt", "useless", "note"),
    [
        (CacheFacts(16), 4096, False, None),
        (CacheFacts(32, prefix_caching=False), 4096, True, "prefix caching is off"),
        (
            CacheFacts(5120, hybrid=True, mamba_cache_mode="align", mamba_block_size=5120),
            4096,
            True,
            "whole blocks of 5120 tokens and prompts are at most 4096",
        ),
        (
            CacheFacts(1056, hybrid=True, mamba_cache_mode="align", mamba_block_size=1056),
            4096,
            False,
            "reused in whole blocks of 1056",
        ),
        (CacheFacts(1056, hybrid=True, mamba_cache_mode="none"), 4096, True, "is off"),
    ],
)
def test_hybrid_prefix_cache_notes(
    facts: CacheFacts, prompt: int, useless: bool, note: str | None
) -> None:
    assert facts.useless_below(prompt) is useless
    line = facts.note(prompt)
    assert (line is None) if note is None else (line is not None and note in line)


def test_cache_facts_are_read_from_vllms_config() -> None:
    config = SimpleNamespace(
        cache_config=SimpleNamespace(
            block_size=2112,
            enable_prefix_caching=True,
            mamba_cache_mode="align",
            mamba_block_size=2112,
        ),
        model_config=SimpleNamespace(is_hybrid=True),
    )
    assert cache_facts(config) == CacheFacts(2112, True, True, "align", 2112)


@pytest.mark.parametrize(
    ("prompt", "shared", "unit", "hit"),
    [
        (2000, 1900, 16, 1888 / 2000),  # attention model, 16-token blocks
        (2000, 1900, 2112, 0.0),  # hybrid block longer than the prompt: never hits
        (6000, 5000, 2112, 4224 / 6000),  # two whole blocks
        (2000, 2000, 16, 1984 / 2000),  # the last token is always computed
        (0, 0, 16, 0.0),
    ],
)
def test_expected_hit(prompt: int, shared: int, unit: int, hit: float) -> None:
    assert expected_hit(prompt, shared, unit) == pytest.approx(hit)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (None, {"state": "ready", "message": "ok"}),  # CPU engine: no gpu field
        (
            {"gpu": [{"device": 0, "freeGib": 3.5, "totalGib": 80.0}]},
            {
                "state": "ready",
                "message": "ok",
                "gpu": [{"device": 0, "freeGib": 3.5, "totalGib": 80.0}],
            },
        ),
    ],
)
def test_status_notification_carries_vram(report: dict | None, expected: dict) -> None:
    from moe_lsp.inference.engine import EngineState
    from moe_lsp.lsp.server import STATUS_NOTIFICATION, MoeLanguageServer
    from moe_lsp.lsp.service import Service

    from ..fakes import ScriptedEngine

    engine = ScriptedEngine(["x"])
    if report is not None:
        engine.gpu_memory = lambda: report  # type: ignore[attr-defined]
    service = Service(lambda config, model_dir: engine)  # type: ignore[arg-type,return-value]
    service.host.engine = engine  # type: ignore[assignment]
    ls = MoeLanguageServer(service=service)
    sent: list[tuple[str, object]] = []
    ls._notify = lambda method, params: sent.append((method, params))  # type: ignore[method-assign]
    ls._on_engine_status(EngineState.READY, "ok")
    assert (STATUS_NOTIFICATION, expected) in sent
    ls.session.close()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max-num-seqs", "64"], {"max_num_seqs": 64}),
        (["--enforce-eager"], {"enforce_eager": True}),
        (["--no-enforce-eager"], {"enforce_eager": False}),
        (
            ["--speculative-config", '{"method": "nemotron_h_mtp", "num_speculative_tokens": 3}'],
            {"speculative_config": {"method": "nemotron_h_mtp", "num_speculative_tokens": 3}},
        ),
        (
            [
                "--trust-remote-code",
                "--gpu-memory-utilization",
                "0.85",
                "--tensor-parallel-size",
                "4",
            ],
            {"trust_remote_code": True, "gpu_memory_utilization": 0.85, "tensor_parallel_size": 4},
        ),
        (["--distributed-executor-backend", "uni"], {"distributed_executor_backend": "uni"}),
        ([], {}),
    ],
)
def test_engine_flags_become_settings(argv: list[str], expected: dict) -> None:
    from moe_lsp.lsp.cli import build_parser, flag_engine

    args = build_parser().parse_args(["serve", *argv])
    engine = flag_engine(args)
    assert {k: v for k, v in engine.items() if k in expected} == expected
    EngineConfig.from_wire(engine)  # every flag is a valid setting


@pytest.mark.parametrize("text", ["[1]", "{bad", '"ngram"'])
def test_a_bad_speculative_config_is_refused_by_name(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from moe_lsp.lsp.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--speculative-config", text])
    assert "argument --speculative-config" in capsys.readouterr().err


SPAWN_PROBE = """
import sys
from moe_lsp.inference.config import EngineConfig
from moe_lsp.inference.vllm_engine import _quiet_env
if sys.argv[1] == "set":
    _quiet_env(EngineConfig(), "/no/model", False)  # the GPU path's environment
from vllm.utils.system_utils import get_mp_context
print(get_mp_context().get_start_method())
"""


@pytest.mark.parametrize(("mode", "method"), [("set", "spawn"), ("unset", "fork")])
def test_vllms_own_process_start_is_spawn_after_the_gpu_environment(mode: str, method: str) -> None:
    """vLLM picks the start method of its engine core and workers in `get_mp_context`; fork
    is its default off the CPU platform (the 'unset' case, as on CUDA), spawn once the
    engine's environment is set."""
    import subprocess
    import sys

    env = {**os.environ, "VLLM_WORKER_MULTIPROC_METHOD": "fork", "MOE_LSP_CONFIG": ""}
    done = subprocess.run(
        [sys.executable, "-c", SPAWN_PROBE, mode],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == method


def test_a_restart_waits_for_the_old_engines_vram_and_an_exit_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moe_lsp.inference import vllm_engine
    from moe_lsp.inference.errors import EngineConfigError

    waits: list[list[int]] = []
    monkeypatch.setattr(vllm_engine, "_on_cpu", lambda: False)
    monkeypatch.setattr(vllm_engine, "validate", lambda *a, **k: None)
    monkeypatch.setattr(vllm_engine, "_quiet_env", lambda *a, **k: None)
    monkeypatch.setattr(vllm_engine, "vram", lambda: [dev(5.0)])  # too little: start refused
    monkeypatch.setattr(vllm_engine, "wait_for_vram", lambda target, **k: waits.append(target))
    monkeypatch.setattr(vllm_engine, "_VRAM_TO_RECOVER", [])

    first = vllm_engine.VllmEngine(cfg(), "/m")
    with pytest.raises(EngineConfigError, match=r"GPU 0 has 5\.0 of 24\.0 GiB free"):
        first.start()
    assert first.health().message.startswith("GPU 0 has 5.0")
    first._llm = SimpleNamespace(shutdown=lambda: None)  # as if it had started
    first.shutdown()
    assert waits == []  # stopping does not wait (a server's exit stays quick)
    second = vllm_engine.VllmEngine(cfg(), "/m")
    with pytest.raises(EngineConfigError):
        second.start()
    assert waits == [[int(5.0 * GIB)]]  # the next start waited for the old engine's memory
