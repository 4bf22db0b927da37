"""The prefix-only prompt: text before the cursor within a token budget, healed at the end."""

from __future__ import annotations

import re

from .prompt import Mode, Prompt
from .tokens import Tokenizer

MAX_CHARS_PER_TOKEN = 16
"""Upper bound on characters scanned per budget token, so huge documents stay cheap."""
NEXT_LINES = 3
"""Lines after the cursor's line kept to detect repeated text."""
_WORD_END = re.compile(r"\w$")
_BLOCK_OPENERS = (":", "{", "(", "[")


def split_line_end(text: str) -> tuple[str, str]:
    """Split `text` at its first line break: (first line, rest after the break)."""
    m = re.search(r"\r\n|\r|\n", text)
    if m is None:
        return text, ""
    return text[: m.start()], text[m.end() :]


def current_line_prefix(prefix: str) -> str:
    """Text of the cursor's line left of the cursor."""
    return re.split(r"\r\n|\r|\n", prefix)[-1]


def decide_mode(line_prefix: str, line_suffix: str) -> tuple[Mode, bool]:
    """Single line when text is right of the cursor or the line holds a statement, else multi."""
    opens = line_prefix.rstrip().endswith(_BLOCK_OPENERS)
    if line_suffix.strip():
        return Mode.SINGLE_LINE, opens
    if not line_prefix.strip() or opens:
        return Mode.MULTI_LINE, opens
    return Mode.SINGLE_LINE, opens


def window_start(prefix: str, tok: Tokenizer, budget: int) -> int:
    """Where the prompt window starts: a line start with at most `budget` tokens after it."""
    start = max(0, len(prefix) - budget * MAX_CHARS_PER_TOKEN)
    if start > 0:
        nl = prefix.find("\n", start)
        if nl >= 0:
            start = nl + 1
    while start < len(prefix) and len(tok.encode(prefix[start:])) > budget:
        # Drop a share of the lines proportional to the excess, at least one.
        excess_lines = prefix.count("\n", start)
        if excess_lines == 0:
            # One enormous line: fall back to a character cut (never mid-character).
            return max(start, len(prefix) - budget)
        drop = max(1, excess_lines // 8)
        for _ in range(drop):
            nl = prefix.find("\n", start)
            if nl < 0:
                break
            start = nl + 1
    return start


def heal(ids: list[int], text: str, tok: Tokenizer) -> tuple[list[int], str]:
    """Back up over a last token that a completion may extend (partial word or whitespace)."""
    if not ids:
        return ids, ""
    last = tok.decode(ids[-1:])
    if not last or "\ufffd" in last or not text.endswith(last):
        return ids, ""
    if last.isspace() or _WORD_END.search(last):
        return ids[:-1], last
    return ids, ""


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _previous_code_line(text: str) -> str:
    """The last line of `text` that holds more than whitespace ('' if none)."""
    for line in reversed(re.split(r"\r\n|\r|\n", text[-4096:])):
        if line.strip():
            return line
    return ""


def build_prefix_prompt(
    prefix: str,
    suffix: str,
    tok: Tokenizer,
    *,
    budget: int = 1536,
    max_tokens_single: int = 48,
    max_tokens_multi: int = 160,
) -> Prompt:
    """Build the prefix-only prompt for a cursor between `prefix` and `suffix`."""
    line_prefix = current_line_prefix(prefix)
    line_suffix, after = split_line_end(suffix)
    mode, opens = decide_mode(line_prefix, line_suffix)
    start = window_start(prefix, tok, budget)
    window = prefix[start:]
    ids, healed = heal(tok.encode(window), window, tok)
    next_lines = "\n".join(re.split(r"\r\n|\r|\n", after)[:NEXT_LINES])
    indent = _indent(line_prefix)
    if not line_prefix.strip():
        previous = _previous_code_line(prefix[: len(prefix) - len(line_prefix)])
        if previous.rstrip().endswith(_BLOCK_OPENERS):
            # A blank line under a block opener: the block ends where a line goes back to
            # the opener's indentation.
            opens, indent = True, _indent(previous)
    return Prompt(
        token_ids=tuple(ids),
        mode=mode,
        heal=healed,
        max_tokens=max_tokens_single if mode is Mode.SINGLE_LINE else max_tokens_multi,
        indent=indent,
        opens_block=opens,
        line_suffix=line_suffix,
        next_lines=next_lines,
        prefix_chars=len(window),
    )
