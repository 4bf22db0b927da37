"""HumanEval infilling tasks (one hidden line, or the whole body), splicing and text scores."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SINGLE = "single"
"""Set of tasks that hide one non-blank line of the canonical solution (InCoder's recipe)."""
MULTI = "multi"
"""Set of tasks that hide the whole canonical solution (the function body)."""
SETS = (SINGLE, MULTI)

_INDENT = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class Task:
    """One infilling task: a document with a hole, the cursor in the hole, and the answer."""

    task_id: str
    """'HumanEval/0 L3' (hidden line 3 of the solution, from 0) or 'HumanEval/0 body'."""
    problem_id: str
    kind: str
    """SINGLE or MULTI."""
    text: str
    """The program with the hidden part removed (its indentation stays)."""
    offset: int
    """Cursor: right after the hidden line's indentation."""
    hidden: str
    """What was removed (without the indentation that stayed in the document)."""
    test: str
    entry_point: str

    @property
    def path(self) -> str:
        """Path the document gets, e.g. 'humaneval/HumanEval_0.py'."""
        return f"humaneval/{self.problem_id.replace('/', '_')}.py"


def _problem_parts(problem: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        str(problem["task_id"]),
        str(problem["prompt"]),
        str(problem["canonical_solution"]),
        str(problem["test"]),
        str(problem["entry_point"]),
    )


def single_line_tasks(problem: Mapping[str, Any]) -> list[Task]:
    """One task per non-blank line of the canonical solution, that line's text hidden."""
    pid, prompt, solution, test, entry = _problem_parts(problem)
    tasks: list[Task] = []
    pos = 0  # start of line i in `solution`
    for i, line in enumerate(solution.split("\n")):
        if line.strip():
            indent = _INDENT.match(line).group()  # type: ignore[union-attr]
            head, tail = solution[: pos + len(indent)], solution[pos + len(line) :]
            hidden = line[len(indent) :]
            offset = len(prompt) + len(head)
            tasks.append(
                Task(f"{pid} L{i}", pid, SINGLE, prompt + head + tail, offset, hidden, test, entry)
            )
        pos += len(line) + 1
    return tasks


def body_task(problem: Mapping[str, Any]) -> Task:
    """The whole body hidden; the cursor after the indentation of its first non-blank line."""
    pid, prompt, solution, test, entry = _problem_parts(problem)
    lines = solution.split("\n")
    first = next(i for i, line in enumerate(lines) if line.strip())
    indent = _INDENT.match(lines[first]).group()  # type: ignore[union-attr]
    before = prompt + "".join(line + "\n" for line in lines[:first]) + indent
    hidden = solution[len(before) - len(prompt) :].rstrip()
    return Task(f"{pid} body", pid, MULTI, before + "\n", len(before), hidden, test, entry)


def build_tasks(problems: Mapping[str, Mapping[str, Any]], kind: str) -> list[Task]:
    """Every task of one set, in HumanEval order (problem number, then line)."""
    ordered = sorted(problems.values(), key=lambda p: int(str(p["task_id"]).rsplit("/", 1)[1]))
    if kind == SINGLE:
        return [t for p in ordered for t in single_line_tasks(p)]
    if kind == MULTI:
        return [body_task(p) for p in ordered]
    raise ValueError(f"unknown task set {kind!r}; use one of {', '.join(SETS)}")


def select(tasks: Sequence[Task], limit: int | None) -> list[Task]:
    """`limit` tasks spread evenly over `tasks` (a fixed stride), or all of them."""
    n = len(tasks)
    if limit is None or limit >= n:
        return list(tasks)
    return [tasks[i * n // limit] for i in range(max(limit, 0))]


def splice(task: Task, fill: str) -> str:
    """The program with `fill` inserted at the cursor."""
    return task.text[: task.offset] + fill + task.text[task.offset :]


def checked_program(task: Task, fill: str) -> str:
    """The completed program followed by the problem's tests and the call to `check`."""
    return f"{splice(task, fill)}\n\n{task.test}\n\ncheck({task.entry_point})\n"


def raw_fill(raw: str, heal: str, kind: str) -> str:
    """The engine's text as a bare harness would insert it: without the token-healing text the
    prompt left out (the model writes it again), and cut at the first newline for one line."""
    if heal and raw.startswith(heal):
        raw = raw[len(heal) :]
    return raw.split("\n", 1)[0] if kind == SINGLE else raw


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(got: str, want: str) -> float:
    """1 - Levenshtein(got, want) / max(len): 1.0 equal, 0.0 nothing in common (ends stripped)."""
    got, want = got.strip(), want.strip()
    if not got and not want:
        return 1.0
    return 1.0 - levenshtein(got, want) / max(len(got), len(want))


def exact_match(got: str, want: str) -> bool:
    """Equal once whitespace at both ends is stripped."""
    return got.strip() == want.strip()


def median(values: Iterable[float]) -> float | None:
    """The median, or None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
