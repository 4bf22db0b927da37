"""What a prompt is: token ids plus the rules that say where its completion ends."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """How much text a completion may hold."""

    SINGLE_LINE = "single-line"
    MULTI_LINE = "multi-line"


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for the engine, and the facts the clean-up needs."""

    token_ids: tuple[int, ...]
    """Ids sent to the engine."""
    mode: Mode
    """Single line (cursor mid-line or after a statement) or multi-line (a block to fill)."""
    heal: str
    """Text cut off the end of the prompt (token healing); the completion must start with it."""
    max_tokens: int
    """Generation limit for this prompt."""
    indent: str
    """Indentation of the cursor's line."""
    opens_block: bool
    """The text before the cursor ends with a block opener (':', '{', '(' or '[')."""
    line_suffix: str
    """Text right of the cursor on its line."""
    next_lines: str
    """A few lines after the cursor's line (to drop completions that repeat them)."""
    prefix_chars: int
    """Characters of document text the prompt holds (for logs and stats)."""
    stop: tuple[str, ...] = ()
    """Stop strings for the engine (the profile's, besides end-of-sequence)."""
    stop_token_ids: tuple[int, ...] = ()
    """Stop tokens for the engine (the profile's special tokens)."""
    kind: str = "prefix"
    """How the prompt was rendered: 'prefix', 'fim' or 'chat' (chat replies need extraction)."""
    profile: str = "prefix-only"
    """Name of the prompt profile."""
    reason: str = ""
    """Why the cursor analysis chose this mode."""
    infill_prefix: str = ""
    """Tail of the prefix given to the model (chat replies may echo it)."""
    infill_suffix: str = ""
    """Head of the suffix given to the model (chat replies may echo it)."""
    snippets: int = 0
    """Cross-file snippets in the prompt."""
    indent_unit: str = ""
    """The document's indentation unit ('\\t' or spaces); completions are re-indented to it."""
    language: str = ""
    """Language name (for tree-sitter checks of the completion in place); '' for plain text."""
    before: str = ""
    """Document text right before the cursor (whole lines, bounded) for those checks."""
    after: str = ""
    """Document text from the cursor on (whole lines, bounded) for those checks."""
    heal_token_ids: tuple[int, ...] = ()
    """Tokens whose text starts with `heal`: the engine's first token is chosen among them
    (constrained healing); () when nothing was healed or the tokenizer lists no vocabulary."""
    verbatim: bool = False
    """The text is taken as written up to a stop (a next-edit window): no line, indentation or
    tree-sitter rules end or clean it."""
