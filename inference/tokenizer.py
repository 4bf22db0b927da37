"""Loads the model's own tokenizer for prompt building (encode/decode without special tokens)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
