"""`make gpu-check`: its argument handling, the commands it runs, and what it says on a machine
without a GPU (this one, in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.bench_engine import BENCH_CONFIG_ENV, bench_engine
from tests.gpu import gpu_check


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "nemotron_h"}')
    return folder


@pytest.mark.parametrize(
    ("model", "config", "expected"),
    [
        (None, None, "give the model folder: make gpu-check MODEL="),
        ("/no/such/model", None, "does not exist"),
        ("EMPTY", None, "has no config.json"),
        ("MODEL", "/no/such.toml", "config file /no/such.toml does not exist"),
        ("MODEL", None, None),
    ],
)
def test_arguments_are_checked(
    model: str | None, config: str | None, expected: str | None, model_dir: Path, tmp_path: Path
) -> None:
    where = {"MODEL": str(model_dir), "EMPTY": str(tmp_path)}
    problem = gpu_check.problem_with(where.get(model or "", model), config)
    assert (problem is None) if expected is None else (expected in str(problem))


@pytest.mark.parametrize(("config", "full"), [(None, False), (Path("/c/cfg.toml"), True)])
def test_the_steps_run_the_e2e_test_bench_and_eval_on_the_model(
    config: Path | None, full: bool
) -> None:
    model = Path("/models/nemotron")
    steps = gpu_check.steps(model, config, full=full, python="py")
    assert [s.name for s in steps] == ["e2e completion", "bench", "eval"]
    for step in steps:
        env = dict(step.env)
        assert env["MOE_LSP_E2E_ARGS"] == "--model /models/nemotron"
        assert env["MOE_LSP_CONFIG"] == (str(config) if config else "")
        assert env.get("MOE_LSP_BENCH_CONFIG") == (str(config) if config else None)
        assert ("--smoke" in step.argv) is (not full and step.name != "e2e completion")
    assert steps[0].argv[:4] == ("py", "-m", "pytest", "-q")
    assert "/models/nemotron" in steps[1].argv and "/models/nemotron" in steps[2].argv


def test_without_a_gpu_it_says_so_and_runs_nothing(model_dir: Path) -> None:
    if gpu_check.has_gpu():
        pytest.skip("this machine has a GPU")
    done = subprocess.run(
        [sys.executable, "-m", "tests.gpu.gpu_check", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=gpu_check.ROOT,
    )
    assert done.returncode == gpu_check.NO_GPU_EXIT
    assert "gpu-check: no NVIDIA GPU found on this machine" in done.stdout
    assert "Nothing was run." in done.stdout
    assert "cpu: " in done.stdout and "software: " in done.stdout  # the machine is printed
    assert "== " not in done.stdout  # no step started


@pytest.mark.parametrize(
    ("toml", "model", "expected"),
    [
        (None, "/m", {"model": "/m", "tensor_parallel_size": 1}),
        (
            "[engine]\ntensorParallelSize = 4\nenableExpertParallel = true\n",
            "/m",
            {"model": "/m", "tensor_parallel_size": 4, "enable_expert_parallel": True},
        ),
        ("[engine]\nmodel = '/other'\n", None, {"model": "/other"}),
    ],
)
def test_bench_engine_settings_come_from_the_bench_config(
    toml: str | None,
    model: str | None,
    expected: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BENCH_CONFIG_ENV, raising=False)
    if toml is not None:
        path = tmp_path / "config.toml"
        path.write_text(toml)
        monkeypatch.setenv(BENCH_CONFIG_ENV, str(path))
    config = bench_engine(model)
    for key, value in expected.items():
        assert getattr(config, key, None) == value or getattr(config.vllm, key, None) == value


def test_a_bad_bench_config_stops_with_its_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[engine]\ntensorParallelSize = 'four'\n")
    monkeypatch.setenv(BENCH_CONFIG_ENV, str(path))
    with pytest.raises(SystemExit, match="tensorParallelSize"):
        bench_engine("/m")
