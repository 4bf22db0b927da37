"""The model's tokenizer behind encode/decode: a folder's tokenizer.json, or a transformers one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as _HfTokenizer


class FolderTokenizer:
    """The `tokenizer.json` of a model folder, exposed as plain encode/decode."""

    def __init__(self, tokenizer: _HfTokenizer) -> None:
        self._tok = tokenizer

    @classmethod
    def from_folder(cls, folder: str | Path) -> FolderTokenizer:
        """Load `folder/tokenizer.json`."""
        return cls(_HfTokenizer.from_file(str(Path(folder) / "tokenizer.json")))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens included verbatim."""
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def token_id(self, token: str) -> int | None:
        """Id of a special or regular token, or None."""
        return self._tok.token_to_id(token)

    @property
    def special_tokens(self) -> list[str]:
        """Contents of every added token (used to pick a prompt profile).

        Not only those flagged special: Qwen2.5-Coder's FIM tokens are added tokens with
        `special: false`."""
        return [t.content for t in self._tok.get_added_tokens_decoder().values()]

    def vocabulary(self) -> list[tuple[int, str]]:
        """(id, text) of every token, as decoded on its own (for constrained healing)."""
        size = self._tok.get_vocab_size(with_added_tokens=True)
        texts = self._tok.decode_batch([[i] for i in range(size)], skip_special_tokens=False)
        return list(enumerate(texts))


class HfTokenizerAdapter:
    """A transformers tokenizer behind the same encode/decode surface as FolderTokenizer."""

    def __init__(self, tok: Any) -> None:
        self._tok = tok

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids)))

    def token_id(self, token: str) -> int | None:
        tid = self._tok.convert_tokens_to_ids(token)
        return None if tid is None or tid == self._tok.unk_token_id else int(tid)

    @property
    def special_tokens(self) -> list[str]:
        """Every added token (special or not) and the special ones: `all_special_tokens`
        alone misses Qwen's FIM tokens, which are added tokens marked "special": false."""
        return added_tokens_of(self._tok)

    def vocabulary(self) -> list[tuple[int, str]]:
        """(id, text) of every token."""
        return [(i, self.decode([i])) for i in range(len(self._tok))]


def added_tokens_of(tok: Any) -> list[str]:
    """Contents of a transformers tokenizer's added tokens (`added_tokens_decoder`, else
    `get_added_vocab`) followed by its special tokens, each once, in that order."""
    seen: dict[str, None] = {}
    decoder = getattr(tok, "added_tokens_decoder", None)
    if isinstance(decoder, dict) and decoder:
        for _, added in sorted(decoder.items()):
            seen.setdefault(str(getattr(added, "content", added)), None)
    else:
        vocab = getattr(tok, "get_added_vocab", None)
        if callable(vocab):
            for text in vocab():
                seen.setdefault(str(text), None)
    for text in getattr(tok, "all_special_tokens", []) or []:
        seen.setdefault(str(text), None)
    return list(seen)


def chat_template_of(hf_tok: Any) -> Callable[[list[dict[str, str]]], str] | None:
    """The tokenizer's chat template as a function of messages, or None if it has none."""
    if not getattr(hf_tok, "chat_template", None):
        return None

    def render(messages: list[dict[str, str]]) -> str:
        # No reasoning before the code: templates that think by default (Qwen3, Nemotron 3)
        # read `enable_thinking`, DeepSeek-V3.1's reads `thinking`; others ignore unknown
        # variables.
        text = str(
            hf_tok.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=False,
                enable_thinking=False,
                thinking=False,
            )
        )
        return close_thinking(text)

    return render


def close_thinking(prompt: str) -> str:
    """A prompt whose template still opened a reasoning block (`<think>` at its end) gets it
    closed empty, so the reply is the answer itself."""
    stripped = prompt.rstrip()
    if stripped.endswith("<think>"):
        return stripped + "\n\n</think>\n\n"
    return prompt
