"""The served model's tokenizer through the server's /tokenize and /detokenize (vLLM, llama.cpp)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from .openai_wire import RemoteEngineError, error_message, http_error, transport_error

log = logging.getLogger(__name__)

CACHE_ENTRIES = 4096
"""Texts (and id lists) whose encoding is kept: prompts encode the same lines again and again."""


class RemoteTokenizer:
    """encode/decode by HTTP calls (blocking: prompts are built on the event loop, so each
    call is bounded by a short timeout; cached). vLLM's api_server speaks
    `{"prompt"}`→`{"tokens"}` and `{"tokens"}`→`{"prompt"}`; llama.cpp's server speaks
    `{"content"}`→`{"tokens"}` and `{"tokens"}`→`{"content"}`. It lists no vocabulary, so
    constrained healing is off with it; a local `engine.tokenizer` folder has one."""

    def __init__(self, client: httpx.Client, base: str, model: str, timeout: float) -> None:
        self._client = client
        self._base = base
        self._model = model
        self._timeout = timeout
        self._llama = False
        self._encoded: OrderedDict[str, list[int]] = OrderedDict()
        self._decoded: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._special: list[str] = []
        self.on_unreachable: Callable[[], None] | None = None
        """Called when the server refuses a connection (the engine then reports it)."""

    @classmethod
    def probe(
        cls, client: httpx.Client, base: str, model: str, timeout: float
    ) -> RemoteTokenizer | None:
        """The server's tokenizer, or None when it has no /tokenize endpoint."""
        tok = cls(client, base, model, timeout)
        for llama in (False, True):
            tok._llama = llama
            try:
                tok.encode("def")
            except RemoteEngineError as err:
                log.debug("tokenize probe (llama.cpp form: %s) failed: %s", llama, err)
                continue
            tok._special = tok._special_tokens_from_server()
            return tok
        return None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self._base + path
        try:
            resp = self._client.post(url, json=body)
        except httpx.HTTPError as err:
            if isinstance(err, httpx.ConnectError) and self.on_unreachable is not None:
                self.on_unreachable()
            raise transport_error(err, url, path, self._timeout) from err
        if resp.status_code != 200:
            raise http_error(resp.status_code, resp.content, url, path)
        try:
            data = resp.json()
        except ValueError as err:
            raise RemoteEngineError(f"{path} answered with something that is not JSON") from err
        if not isinstance(data, dict):
            raise RemoteEngineError(f"{path} answered with something that is not an object")
        return data

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        if not text:
            return []
        hit = self._encoded.get(text)
        if hit is not None:
            self._encoded.move_to_end(text)
            return list(hit)
        body: dict[str, Any] = (
            {"content": text, "add_special": False}
            if self._llama
            else {"model": self._model, "prompt": text, "add_special_tokens": False}
        )
        tokens = self._post("/tokenize", body).get("tokens")
        if not isinstance(tokens, list):
            raise RemoteEngineError("/tokenize answered without a list of tokens")
        ids = [int(t["id"]) if isinstance(t, dict) else int(t) for t in tokens]
        _remember(self._encoded, text, ids)
        return list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`."""
        key = tuple(ids)
        if not key:
            return ""
        hit = self._decoded.get(key)
        if hit is not None:
            self._decoded.move_to_end(key)
            return hit
        body: dict[str, Any] = {"tokens": list(key)}
        if not self._llama:
            body["model"] = self._model
        data = self._post("/detokenize", body)
        text = data.get("content" if self._llama else "prompt")
        if not isinstance(text, str):
            raise RemoteEngineError("/detokenize answered without the text")
        _remember(self._decoded, key, text)
        return text

    def token_id(self, token: str) -> int | None:
        """Id of `token` when the server's tokenizer reads it as a single token."""
        ids = self.encode(token)
        return ids[0] if len(ids) == 1 and self.decode(ids) == token else None

    @property
    def special_tokens(self) -> list[str]:
        """Added tokens, as far as the server tells them (vLLM: `/tokenizer_info`, on when it
        runs with --enable-tokenizer-info-endpoint); else []."""
        return list(self._special)

    def _special_tokens_from_server(self) -> list[str]:
        if self._llama:
            return []
        try:
            resp = self._client.get(self._base + "/tokenizer_info")
        except httpx.HTTPError:
            return []
        if resp.status_code != 200:
            log.info(
                "the server does not list its special tokens (%s); prompt profiles that need "
                "FIM tokens want engine.tokenizer",
                error_message(resp.content)[:80],
            )
            return []
        try:
            info = resp.json()
        except ValueError:
            return []
        return special_tokens_of(info)


def special_tokens_of(info: Any) -> list[str]:
    """The added and special tokens named in a tokenizer_config-like mapping."""
    if not isinstance(info, dict):
        return []
    found: list[str] = []
    added = info.get("added_tokens_decoder")
    if isinstance(added, dict):
        for value in added.values():
            content = value.get("content") if isinstance(value, dict) else value
            if isinstance(content, str):
                found.append(content)
    extra = info.get("additional_special_tokens")
    if isinstance(extra, list):
        found += [t for t in extra if isinstance(t, str)]
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        if isinstance(info.get(key), str):
            found.append(info[key])
    return list(dict.fromkeys(found))


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)
