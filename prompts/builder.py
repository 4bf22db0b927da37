"""Context engine entry point: cursor analysis, budgets, cross-file context, profile render."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .crossfile import OpenDocument, gather_context
from .cursor import CursorContext, Decision, analyze_cursor
from .healing import allowed_first_tokens
from .languages import LanguageSpec
from .postprocess import indent_unit
from .profiles import ChatTemplate, Profile, PromptParts, Snippet, render
from .prompt import Mode, Prompt
from .soundness import window_after, window_before
from .syntax import SyntaxTree
from .tokens import Tokenizer
from .window import fit_suffix, stable_prefix_start

NEXT_LINES = 3
"""Lines after the cursor's line kept to detect completions that repeat them."""
_WORD_END = re.compile(r"\w$")
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Budget:
    """How the prompt's tokens are shared out."""

    total: int = 1536
    """Tokens of code (current file and other files) in a prompt."""
    context_share: float = 0.25
    """Share of `total` for other open files, when there are any."""
    suffix_share: float = 0.2
    """Share of the current file's tokens for text after the cursor (FIM profiles only)."""
    step_lines: int = 32
    """The prefix window's start moves in steps of this many lines (prefix-cache hits)."""
    max_tokens_single: int = 48
    """Generation limit for a single-line completion."""
    max_tokens_multi: int = 160
    """Generation limit for a multi-line completion."""


@dataclass(frozen=True)
class Task:
    """A request that is not a plain completion (a code action): the mode is given, chat
    models get an instruction, and more strings may end the text."""

    kind: str
    mode: Mode
    instruction: str = ""
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    verbatim: bool = False
    """Take the text as written up to a stop (no clean-up rules): a next-edit window."""


@dataclass(frozen=True)
class Request:
    """Everything known about one completion request, as plain values."""

    text: str
    offset: int
    path: str
    language: LanguageSpec
    tree: SyntaxTree | None = None
    others: Sequence[OpenDocument] = ()
    repo_name: str = ""
    uri: str = ""
    version: int = 0
    task: Task | None = None
    """None for a completion at the cursor; a code action's task otherwise."""


@dataclass(frozen=True)
class NoCompletion:
    """The cursor analysis decided there is nothing to complete here."""

    reason: str


BINARY_SAMPLE = 4096
"""Characters around the cursor checked for binary content."""
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r", "\f", "\v"}


def looks_binary(text: str, offset: int) -> bool:
    """Text near the cursor that is not source code: NUL bytes or many control characters."""
    sample = text[max(0, offset - BINARY_SAMPLE) : offset + BINARY_SAMPLE]
    if "\x00" in sample:
        return True
    controls = sum(1 for ch in sample if ch in _CONTROL or ch == "\ufffd")
    return len(sample) > 0 and controls / len(sample) > 0.1


def heal(ids: list[int], text: str, tok: Tokenizer) -> str:
    """The tail of `text` a completion may extend (its last token, if a partial word or space)."""
    if not ids:
        return ""
    last = tok.decode(ids[-1:])
    if not last or "\ufffd" in last or not text.endswith(last) or len(last) == len(text):
        return ""
    if last.isspace() or _WORD_END.search(last):
        return last
    return ""


def build(
    req: Request,
    tok: Tokenizer,
    profile: Profile,
    budget: Budget = Budget(),
    *,
    chat_template: ChatTemplate | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Prompt | NoCompletion:
    """Build the prompt for a cursor, or say why there is none."""
    offset = max(0, min(req.offset, len(req.text)))
    if looks_binary(req.text, offset):
        return NoCompletion("the text looks binary")
    cursor: CursorContext = analyze_cursor(req.tree, req.text, offset)
    task = req.task
    if task is None and cursor.decision is Decision.NONE:
        return NoCompletion(cursor.reason)
    count = count_tokens or (lambda s: len(tok.encode(s)))

    # Other open files first, so that the prompt's start is stable across keystrokes.
    context_budget = int(budget.total * budget.context_share) if req.others else 0
    snippets: list[Snippet] = []
    if context_budget > 0:
        current = OpenDocument(req.uri, req.path, req.language.name, req.text, req.version)
        found = gather_context(
            current, offset, req.others, budget=context_budget, count_tokens=count
        )
        snippets = [Snippet(s.path, s.text) for s in found]
    # A fixed split (not "whatever the snippets left") keeps the prefix window stable.
    own = budget.total - context_budget
    uses_suffix = profile.uses_suffix
    suffix_budget = int(own * budget.suffix_share) if uses_suffix else 0
    prefix_budget = own - suffix_budget

    prefix, suffix = req.text[:offset], req.text[offset:]
    start = stable_prefix_start(prefix, tok, prefix_budget, budget.step_lines)
    window = prefix[start:]
    suffix_window = suffix[: fit_suffix(suffix, tok, suffix_budget)] if uses_suffix else ""
    healed = ""
    if profile.kind != "chat":
        # The last token depends only on nearby text: encode the last two lines, not the window.
        last_nl = window.rfind("\n")
        tail = window[window.rfind("\n", 0, max(last_nl, 0)) + 1 :] if last_nl > 0 else window
        healed = heal(tok.encode(tail), tail, tok)
    parts = PromptParts(
        prefix=window[: len(window) - len(healed)],
        suffix=suffix_window,
        path=req.path,
        repo_name=req.repo_name,
        snippets=tuple(snippets),
        comment=req.language.line_comment,
        instruction=task.instruction if task is not None else "",
    )
    rendered = render(profile, parts, chat_template)
    stop, stop_ids = _split_stops(rendered.stop + (task.stop if task else ()), tok)

    line_suffix = _NEWLINE.split(suffix, 1)[0]
    after = suffix[len(line_suffix) :].lstrip("\r\n")
    next_lines = "\n".join(_NEWLINE.split(after[:4096])[:NEXT_LINES])
    multi = cursor.decision is Decision.MULTI_LINE if task is None else task.mode is Mode.MULTI_LINE
    indent = cursor.block_indent if (multi and cursor.block_empty) else cursor.indent
    max_tokens = budget.max_tokens_multi if multi else budget.max_tokens_single
    if task is not None and task.max_tokens is not None:
        max_tokens = task.max_tokens
    return Prompt(
        token_ids=tuple(tok.encode(rendered.text)),
        mode=Mode.MULTI_LINE if multi else Mode.SINGLE_LINE,
        heal=healed,
        max_tokens=max_tokens,
        indent=indent,
        opens_block=multi and cursor.block_empty,
        line_suffix=line_suffix,
        next_lines=next_lines,
        prefix_chars=len(window),
        stop=stop,
        stop_token_ids=stop_ids,
        kind=rendered.kind,
        profile=profile.name,
        reason=cursor.reason if task is None else f"code action: {task.kind}",
        infill_prefix=parts.prefix[-2000:],
        infill_suffix=suffix_window[:2000] or suffix[:2000],
        snippets=len(snippets),
        indent_unit=indent_unit(window),
        language=req.language.name if req.language.module else "",
        before=window_before(prefix),
        after=window_after(suffix),
        heal_token_ids=allowed_first_tokens(tok, healed),
        verbatim=task is not None and task.verbatim,
    )


def _split_stops(stops: Sequence[str], tok: Tokenizer) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Special-token stops become token ids (they never appear in detokenized text)."""
    strings: list[str] = []
    ids: list[int] = []
    for s in stops:
        enc = tok.encode(s)
        if len(enc) == 1 and len(s) > 1 and s[0] in "<[":
            ids.append(enc[0])
        else:
            strings.append(s)
    return tuple(strings), tuple(ids)
