"""Tables of cases for the latency benchmark's pure helpers: percentiles, ratios, formatting,
machine-info parsers, engine flags and server-sent-event parsing."""

from __future__ import annotations

import json

import pytest

from tests.bench.alternatives import (
    engine_cli_flags,
    llama_piece,
    openai_piece,
    parse_sse,
)
from tests.bench.llama_cpp import cmake_args
from tests.bench.machine import Gpu, parse_cpuinfo, parse_meminfo, parse_nvidia_smi
from tests.bench.report import (
    Table,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    overhead,
    percentile,
    ratio,
    save_json,
    summarize,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 95, 7.0),
        ([1, 2, 3, 4], 50, 2.5),
        ([4, 1, 3, 2], 50, 2.5),  # order does not matter
        ([1, 2, 3, 4, 5], 0, 1.0),
        ([1, 2, 3, 4, 5], 100, 5.0),
        ([1, 2, 3, 4, 5], 95, 4.8),
        ([10, 20], 95, 19.5),
        ([1, float("nan"), 3], 50, 2.0),  # NaN ignored
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    got = percentile(values, q)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1, 2], q)


def test_summarize_counts_only_real_values() -> None:
    s = summarize([3.0, 1.0, float("nan"), 2.0])
    assert s == {"n": 3, "median": 2.0, "p95": pytest.approx(2.9), "min": 1.0, "max": 3.0}
    assert summarize([])["median"] is None


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        (10, 5, 2.0),
        (1, 4, 0.25),
        (None, 5, None),
        (5, None, None),
        (5, 0, None),
        (5, -1, None),
    ],
)
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert ratio(num, den) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (1.0, "1.00x"),
        (0.4249, "0.42x"),
        (2.5, "2.50x"),
        (12.34, "12.3x"),
        (123.4, "123x"),
    ],
)
def test_fmt_ratio(value: float | None, text: str) -> None:
    assert fmt_ratio(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (3.14159, "3.1"), (9.96, "10.0"), (10.4, "10"), (1234.6, "1235"), (-12.6, "-13")],
)
def test_fmt_ms(value: float | None, text: str) -> None:
    assert fmt_ms(value) == text


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (12.345, "+12.3%"), (-4.0, "-4.0%")])
def test_fmt_pct(value: float | None, text: str) -> None:
    assert fmt_pct(value) == text


@pytest.mark.parametrize(
    ("total", "base", "expected"),
    [
        (110.0, 100.0, (10.0, 10.0)),
        (90.0, 100.0, (-10.0, -10.0)),
        (5.0, 0.0, (5.0, None)),
        (None, 100.0, (None, None)),
    ],
)
def test_overhead(
    total: float | None, base: float | None, expected: tuple[float | None, float | None]
) -> None:
    assert overhead(total, base) == expected


def test_table_aligns_columns_and_keeps_note() -> None:
    text = Table("T", ["name", "ms"], [["a", "5"], ["long name", "1234"]], "note").render()
    lines = text.splitlines()
    assert lines[0] == "T"
    assert lines[1] == "name         ms"
    assert lines[3] == "a             5"
    assert lines[4] == "long name  1234"
    assert lines[-1] == "note"


def test_save_json_turns_nan_into_null(tmp_path) -> None:
    path = save_json(
        {"a": float("nan"), "b": [1.5, float("inf")], "c": (1, 2)}, tmp_path / "x.json"
    )
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": [1, 2]}


# --- machine info ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n", "AMD EPYC 7B13"),
        ("processor : 0\nmodel name :   \nProcessor : ARMv8 rev 1\n", "ARMv8 rev 1"),
        ("Hardware\t: BCM2835\n", "BCM2835"),
        ("flags : avx\n", ""),
        ("", ""),
    ],
)
def test_parse_cpuinfo(text: str, model: str) -> None:
    assert parse_cpuinfo(text) == model


@pytest.mark.parametrize(
    ("text", "gib"),
    [
        ("MemTotal:       25165824 kB\nMemFree: 1 kB\n", 24.0),
        ("MemFree: 1 kB\nMemTotal: 1048576 kB\n", 1.0),
        ("MemFree: 1 kB\n", None),
        ("MemTotal: lots\n", None),
    ],
)
def test_parse_meminfo(text: str, gib: float | None) -> None:
    got = parse_meminfo(text)
    assert got == (None if gib is None else pytest.approx(gib))


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("", []),
        (
            "NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05\n",
            [Gpu("NVIDIA A100-SXM4-40GB", 40960, "535.104.05")],
        ),
        (
            "NVIDIA H100, PCIe, 81559 MiB, 550.54\nTesla T4, 15360 MiB, 550.54\n",
            [Gpu("NVIDIA H100, PCIe", 81559, "550.54"), Gpu("Tesla T4", 15360, "550.54")],
        ),
        ("Some GPU, [N/A], 1.0\n", [Gpu("Some GPU", None, "1.0")]),
        ("garbage\n", []),
    ],
)
def test_parse_nvidia_smi(text: str, gpus: list[Gpu]) -> None:
    assert parse_nvidia_smi(text) == gpus


# --- engines -------------------------------------------------------------------------------------


def test_engine_cli_flags_mirror_engine_args() -> None:
    flags = engine_cli_flags(
        {
            "model": "/m",
            "dtype": "bfloat16",
            "max_model_len": 4096,
            "enable_prefix_caching": True,
            "enforce_eager": False,
            "enable_expert_parallel": False,
            "block_size": 32,
            "distributed_executor_backend": None,
            "speculative_config": {"method": "ngram", "num_speculative_tokens": 4},
        }
    )
    assert flags == [
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "4096",
        "--enable-prefix-caching",
        "--block-size",
        "32",
        "--speculative-config",
        '{"method": "ngram", "num_speculative_tokens": 4}',
    ]
    assert "/m" not in flags


@pytest.mark.parametrize(
    ("line", "data"),
    [
        ('data: {"a": 1}', {"a": 1}),
        ('data:{"a": 1}\n', {"a": 1}),
        ("data: [DONE]", None),
        (": keep-alive", None),
        ("event: x", None),
        ("data: not json", None),
        ("data: [1, 2]", None),
        ("", None),
    ],
)
def test_parse_sse(line: str, data: dict | None) -> None:
    assert parse_sse(line) == data


@pytest.mark.parametrize(
    ("chunk", "piece"),
    [
        ({"choices": [{"text": "ab"}]}, ("ab", None)),
        ({"choices": [{"text": ""}]}, ("", None)),
        ({"choices": [], "usage": {"completion_tokens": 48}}, (None, 48)),
        ({"choices": [{"text": "x"}], "usage": None}, ("x", None)),
    ],
)
def test_openai_piece(chunk: dict, piece: tuple) -> None:
    assert openai_piece(chunk) == piece


@pytest.mark.parametrize(
    ("chunk", "piece"),
    [
        ({"content": "ab", "stop": False}, ("ab", None)),
        ({"content": "", "stop": True, "tokens_predicted": 48}, (None, 48)),
        ({"content": "", "stop": True, "timings": {"predicted_n": 12}}, (None, 12)),
        ({"content": "z", "stop": True}, ("z", None)),
    ],
)
def test_llama_piece(chunk: dict, piece: tuple) -> None:
    assert llama_piece(chunk) == piece


@pytest.mark.parametrize(("cuda", "present"), [(False, False), (True, True)])
def test_llama_cmake_args_build_static_server_without_downloads(cuda: bool, present: bool) -> None:
    args = cmake_args(cuda)
    assert "-DBUILD_SHARED_LIBS=OFF" in args
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in args  # the prebuilt UI is a download
    assert ("-DGGML_CUDA=ON" in args) is present
    assert "-DLLAMA_BUILD_SERVER=ON" in args
