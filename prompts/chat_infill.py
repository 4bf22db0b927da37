"""Chat infill for instruct models without FIM tokens: the messages, and the code in a reply."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .profiles import PromptParts

log = logging.getLogger(__name__)

REASONING_CAP_CHARS = 600
"""Reasoning a chat reply may spend before its request is stopped (about 150 tokens): the
template was asked not to think, so a model still reasoning this long will not answer in
time for a completion."""

MARKERS = ("<CURSOR>", "{{FILL_HERE}}", "<<<HOLE>>>")
"""Hole markers for chat infill; the first one absent from the code is used."""

CHAT_SYSTEM = (
    "You are a code completion engine. The user shows a file with a hole marked {marker}. "
    "Reply with only the code that goes in place of {marker}, in one fenced code block. "
    "Do not repeat code that is already before or after the hole, and do not explain."
)
"""System message of chat infill ({marker} is replaced by the hole marker)."""

_BACKTICKS = re.compile(r"`{3,}")


def _marker(texts: Sequence[str]) -> str:
    for marker in MARKERS:
        if not any(marker in t for t in texts):
            return marker
    n = 0
    while any(f"<CURSOR{n}>" in t for t in texts):
        n += 1
    return f"<CURSOR{n}>"


def _fence(texts: Sequence[str]) -> str:
    """A backtick fence longer than any backtick run in `texts`."""
    longest = max((len(m) for t in texts for m in _BACKTICKS.findall(t)), default=2)
    return "`" * max(3, longest + 1)


def chat_messages(parts: PromptParts) -> list[dict[str, str]]:
    """System and user messages asking an instruct model to fill the hole at the cursor."""
    texts = [parts.prefix, parts.suffix, *(s.text for s in parts.snippets)]
    marker, fence = _marker(texts), _fence(texts)
    sections = []
    if parts.snippets:
        where = f" of repository {parts.repo_name}" if parts.repo_name else ""
        sections.append(f"Code from other files{where}, for reference:")
        sections += [f"{s.path}:\n{fence}\n{_with_newline(s.text)}{fence}" for s in parts.snippets]
    name = f"File {parts.path}" if parts.path else "The file"
    code = _with_newline(parts.prefix + marker + parts.suffix)
    sections.append(f"{name}, with the hole marked {marker}:\n{fence}\n{code}{fence}")
    task = f"{parts.instruction} " if parts.instruction else ""
    sections.append(f"{task}Reply with the code that replaces {marker}.")
    return [
        {"role": "system", "content": CHAT_SYSTEM.format(marker=marker)},
        {"role": "user", "content": "\n\n".join(sections)},
    ]


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# --- reading a chat reply --------------------------------------------------------------------

_OPEN_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n`]*\n", re.MULTILINE)
_BRACKETS = {")": "(", "]": "[", "}": "{"}


def _after_thinking(reply: str) -> str:
    """The reply after a reasoning block ('' while the model is still thinking)."""
    if "</think>" in reply:
        return reply.rsplit("</think>", 1)[1]
    if reply.lstrip().startswith("<think>"):
        return ""
    return reply


def reasoning_capped(reply: str, cap: int = REASONING_CAP_CHARS) -> bool:
    """True (and a warning in the log) when `reply` is still inside a reasoning block that
    has run past `cap` characters: the request should stop, it has no code to give."""
    if "</think>" in reply or not reply.lstrip().startswith("<think>"):
        return False
    spent = len(reply.lstrip()) - len("<think>")
    if spent <= cap:
        return False
    log.warning(
        "chat reply stopped after %d characters of reasoning and no code: the model's chat "
        "template thinks although asked not to (enable_thinking=False); pick a checkpoint or "
        "template without thinking, or completion.profile for a FIM format",
        spent,
    )
    return True


def _fenced(text: str) -> str | None:
    """Content of the first fenced block (to the end if it is not closed), None if none."""
    m = _OPEN_FENCE.search(text)
    if m is None:
        return None
    fence = m.group(1)
    close = re.compile(
        rf"^[ \t]*{re.escape(fence[0]) * len(fence)}{re.escape(fence[0])}*[ \t]*$", re.M
    )
    end = close.search(text, m.end())
    body = text[m.end() : end.start()] if end else text[m.end() :]
    if end is None and body.rstrip().endswith(fence):
        body = body.rstrip()[: -len(fence)]
    return body[:-1] if body.endswith("\n") else body


def _unclosed_openers(text: str) -> bool:
    """True if `text` opens a bracket it does not close."""
    stack: list[str] = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in _BRACKETS and stack and stack[-1] == _BRACKETS[ch]:
            stack.pop()
    return bool(stack)


def _strip_prefix_echo(code: str, prefix: str) -> str:
    """Drop the start of `code` that repeats the end of `prefix` from a line start on."""
    lo = max(0, len(prefix) - len(code))
    starts = [0] if lo == 0 else []  # line starts at or after `lo`, longest tail first
    nl = prefix.find("\n", max(lo - 1, 0))
    while nl >= 0:
        starts.append(nl + 1)
        nl = prefix.find("\n", nl + 1)
    for start in starts:
        tail = prefix[start:]
        if not tail.strip():
            continue
        if code.startswith(tail):
            return code[len(tail) :]
        bare_tail, bare_code = tail.lstrip(" \t"), code.lstrip(" \t")
        if bare_code.startswith(bare_tail):
            return bare_code[len(bare_tail) :]
    indent = prefix[prefix.rfind("\n") + 1 :]
    if indent and not indent.strip() and code.startswith(indent):
        return code[len(indent) :]  # the reply re-indented the cursor's line
    return code


def _strip_suffix_echo(code: str, suffix: str) -> str:
    """Drop the end of `code` that repeats the start of `suffix` up to a line end."""
    body = code.rstrip()
    ends = [m.start() for m in re.finditer("\n", suffix)] + [len(suffix)]
    for end in sorted((e for e in ends if e <= len(body)), reverse=True):
        head = suffix[:end].rstrip()
        if not head.strip() or not body.endswith(head):
            continue
        kept = body[: len(body) - len(head)]
        if not _unclosed_openers(kept):  # else the closers belong to the completion
            return kept
    return code


def extract_infill(reply: str, prefix: str, suffix: str) -> str:
    """The code to insert at the cursor, from a chat model's `reply` to a chat-infill prompt.

    Takes the first fenced block (or the bare reply), drops a reasoning block, leading blank
    lines and trailing whitespace, then any echo of the code around the hole: the end of
    `prefix` from a line start on (indentation may differ) and the start of `suffix` up to a
    line end (kept when its brackets close ones the completion opened).
    """
    text = _after_thinking(reply)
    code = _fenced(text)
    if code is None:
        code = text.strip("\n")
        if "\n" not in code and len(code) > 1 and code[0] == code[-1] == "`":
            code = code.strip("`")
    code = re.sub(r"\A(?:[ \t]*\n)+", "", code)
    if not code.strip():
        return ""
    return _strip_suffix_echo(_strip_prefix_echo(code, prefix), suffix).rstrip()
