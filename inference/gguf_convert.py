"""Owns reading a llama-architecture GGUF file into HF Llama weights, config and tokenizer files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from tqdm import tqdm

__all__ = [
    "GGUFConvertError",
    "GGUFModel",
    "build_generation_config",
    "build_llama_config",
    "build_tokenizer",
    "build_tokenizer_config",
    "gguf_to_hf_name",
    "iter_llama_tensors",
    "load_llama_state_dict",
    "open_gguf",
    "permute_qk",
    "unpermute_qk",
    "write_tokenizer_files",
]

# llama.cpp token types (gguf.TokenType): 1 normal, 2 unknown, 3 control, 4 user defined,
# 5 unused, 6 byte.
_TOKEN_TYPE_CONTROL = 3
_TOKEN_TYPE_USER_DEFINED = 4

_LAYER_NAMES: dict[str, str] = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_NAMES: dict[str, str] = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
_GLOBAL_RE = re.compile(r"^([a-z_]+)\.(weight|bias)$")


class GGUFConvertError(Exception):
    """The GGUF file cannot be converted (unsupported architecture, tensor or metadata)."""


@dataclass
class GGUFModel:
    """An opened GGUF file: its reader and its metadata as plain Python values."""

    path: Path
    reader: GGUFReader
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def meta(self, key: str, default: Any = None) -> Any:
        """Metadata value for `key`; `{arch}.` is replaced by the model's architecture prefix."""
        return self.metadata.get(key.replace("{arch}", self.architecture), default)

    def require(self, key: str) -> Any:
        value = self.meta(key)
        if value is None:
            raise GGUFConvertError(f"GGUF metadata key {key!r} is missing in {self.path}")
        return value


def open_gguf(path: str | Path) -> GGUFModel:
    """Open a GGUF file (memory-mapped) and decode its metadata."""
    path = Path(path)
    reader = GGUFReader(path)
    metadata: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        metadata[key] = _field_value(fld)
    model = GGUFModel(path=path, reader=reader, metadata=metadata)
    if model.architecture != "llama":
        raise GGUFConvertError(
            f"{path} has architecture {model.architecture!r}; only 'llama' GGUF files are supported"
        )
    return model


def _field_value(fld: Any) -> Any:
    value = fld.contents()
    if fld.types and fld.types[0] == GGUFValueType.FLOAT32:
        # Shortest decimal that round-trips the float32 (9.99999974e-06 -> 1e-05).
        value = float(str(np.float32(value)))
    return value


# --- q/k permutation -------------------------------------------------------------------------


def permute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert permutation of q/k rows (HF rotate-half layout -> interleaved pairs)."""
    rows = weight.shape[0]
    head_dim = rows // n_head
    return (
        weight.reshape(n_head, 2, head_dim // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def unpermute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute_qk`: restore the HF row order of a q (n_head) or k (n_kv_head) weight."""
    rows = weight.shape[0]
    head_dim = rows // n_head
    if head_dim * n_head != rows or head_dim % 2:
        raise GGUFConvertError(f"cannot unpermute {weight.shape} with {n_head} heads")
    return (
        weight.reshape(n_head, head_dim // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


# --- names and tensors -----------------------------------------------------------------------


def gguf_to_hf_name(name: str) -> str:
    """Map a GGUF tensor name (e.g. `blk.3.attn_q.weight`) to its HF Llama name."""
    if m := _BLOCK_RE.match(name):
        layer, part, kind = m.groups()
        if part not in _LAYER_NAMES:
            raise GGUFConvertError(f"unsupported GGUF tensor {name!r}")
        return f"model.layers.{layer}.{_LAYER_NAMES[part]}.{kind}"
    if m := _GLOBAL_RE.match(name):
        part, kind = m.groups()
        if part not in _GLOBAL_NAMES:
            raise GGUFConvertError(f"unsupported GGUF tensor {name!r}")
        return f"{_GLOBAL_NAMES[part]}.{kind}"
    raise GGUFConvertError(f"unsupported GGUF tensor {name!r}")


def iter_llama_tensors(
    model: GGUFModel, *, progress: bool = False, desc: str = "Converting"
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (HF name, float32 array in HF [out, in] layout) for every tensor of the GGUF."""
    n_head = int(model.require("{arch}.attention.head_count"))
    n_kv_head = int(model.meta("{arch}.attention.head_count_kv", n_head))
    tensors = model.reader.tensors
    for tensor in tqdm(tensors, desc=desc, unit="tensor", disable=not progress, leave=False):
        shape = tuple(int(d) for d in reversed(tensor.shape))
        try:
            values = dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError as exc:
            raise GGUFConvertError(
                f"cannot dequantize {tensor.name} of type {tensor.tensor_type.name}"
            ) from exc
        # np.array copies: F32 tensors are read-only views of the memory-mapped file.
        values = np.array(values, dtype=np.float32).reshape(shape)
        hf_name = gguf_to_hf_name(tensor.name)
        if hf_name.endswith("self_attn.q_proj.weight"):
            values = unpermute_qk(values, n_head)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            values = unpermute_qk(values, n_kv_head)
        yield hf_name, np.ascontiguousarray(values)


def load_llama_state_dict(model: GGUFModel, *, progress: bool = False) -> dict[str, np.ndarray]:
    """Dequantize the whole GGUF into an HF Llama state dict of float32 arrays."""
    state = dict(iter_llama_tensors(model, progress=progress))
    if "model.embed_tokens.weight" not in state:
        raise GGUFConvertError(f"{model.path} has no token_embd tensor")
    return state


# --- config ----------------------------------------------------------------------------------


def _token_id(model: GGUFModel, key: str) -> int | None:
    value = model.meta(f"tokenizer.ggml.{key}")
    return None if value is None else int(value)


def build_llama_config(model: GGUFModel, *, dtype: str = "bfloat16") -> dict[str, Any]:
    """HF `LlamaForCausalLM` config.json values from the GGUF metadata."""
    hidden = int(model.require("{arch}.embedding_length"))
    n_head = int(model.require("{arch}.attention.head_count"))
    n_kv_head = int(model.meta("{arch}.attention.head_count_kv", n_head))
    head_dim = int(
        model.meta("{arch}.attention.key_length", model.meta("{arch}.rope.dimension_count", 0))
        or hidden // n_head
    )
    tokens = model.meta("tokenizer.ggml.tokens") or []
    vocab_size = int(model.meta("{arch}.vocab_size", len(tokens)) or 0)
    if not vocab_size:
        embd = next(t for t in model.reader.tensors if t.name == "token_embd.weight")
        vocab_size = int(embd.shape[1])
    has_output = any(t.name == "output.weight" for t in model.reader.tensors)
    bos = _token_id(model, "bos_token_id")
    eos = _token_id(model, "eos_token_id")
    pad = _token_id(model, "padding_token_id")
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": int(model.require("{arch}.feed_forward_length")),
        "num_hidden_layers": int(model.require("{arch}.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv_head,
        "head_dim": head_dim,
        "max_position_embeddings": int(model.meta("{arch}.context_length", 2048)),
        "rope_theta": float(model.meta("{arch}.rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "rms_norm_eps": float(model.meta("{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "tie_word_embeddings": not has_output,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "use_cache": True,
        "torch_dtype": dtype,
    }


def build_generation_config(model: GGUFModel) -> dict[str, Any]:
    """generation_config.json: stop on the eos token and on <|endoftext|>-style control tokens."""
    eos = _token_id(model, "eos_token_id")
    stops: list[int] = [] if eos is None else [eos]
    tokens: list[str] = model.meta("tokenizer.ggml.tokens") or []
    for name in ("<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>"):
        if name in tokens and tokens.index(name) not in stops:
            stops.append(tokens.index(name))
    config: dict[str, Any] = {
        "bos_token_id": _token_id(model, "bos_token_id"),
        "eos_token_id": stops[0] if len(stops) == 1 else stops,
    }
    pad = _token_id(model, "padding_token_id")
    if pad is not None:
        config["pad_token_id"] = pad
    return config


# --- tokenizer -------------------------------------------------------------------------------


def build_tokenizer(model: GGUFModel) -> Tokenizer:
    """A `tokenizers` byte-level BPE tokenizer equal to the GGUF's gpt2-style vocabulary."""
    kind = model.meta("tokenizer.ggml.model")
    if kind != "gpt2":
        raise GGUFConvertError(
            f"only gpt2 (byte-level BPE) GGUF tokenizers are supported, not {kind}"
        )
    tokens: list[str] = model.require("tokenizer.ggml.tokens")
    merges_raw: list[str] = model.require("tokenizer.ggml.merges")
    types: list[int] = model.meta("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise GGUFConvertError("the GGUF vocabulary has duplicate tokens")
    merges: list[tuple[str, str]] = []
    for merge in merges_raw:
        left, sep, right = merge.partition(" ")
        if not sep:
            raise GGUFConvertError(f"malformed merge {merge!r}")
        merges.append((left, right))
    unk_id = _token_id(model, "unknown_token_id")
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            unk_token=tokens[unk_id] if unk_id is not None else None,
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = None
    pre = model.meta("tokenizer.ggml.pre", "default")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder", "refact", "codeshell", "command-r"):
        # llama.cpp splits these with "\p{N}" first: every digit is its own pre-token.
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    added: list[AddedToken] = []
    for tok, kind_id in zip(tokens, types, strict=False):
        if kind_id in (_TOKEN_TYPE_CONTROL, _TOKEN_TYPE_USER_DEFINED):
            added.append(AddedToken(tok, special=kind_id == _TOKEN_TYPE_CONTROL, normalized=False))
    tokenizer.add_special_tokens([t for t in added if t.special])
    tokenizer.add_tokens([t for t in added if not t.special])
    return tokenizer


def build_tokenizer_config(model: GGUFModel) -> dict[str, Any]:
    """tokenizer_config.json values (special tokens, chat template, max length)."""
    tokens: list[str] = model.require("tokenizer.ggml.tokens")
    types: list[int] = model.meta("tokenizer.ggml.token_type") or [1] * len(tokens)

    def tok(key: str) -> str | None:
        idx = _token_id(model, key)
        return tokens[idx] if idx is not None and 0 <= idx < len(tokens) else None

    decoder = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": k == _TOKEN_TYPE_CONTROL,
        }
        for i, (t, k) in enumerate(zip(tokens, types, strict=False))
        if k in (_TOKEN_TYPE_CONTROL, _TOKEN_TYPE_USER_DEFINED)
    }
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [
            t for t, k in zip(tokens, types, strict=False) if k == _TOKEN_TYPE_CONTROL
        ],
        "bos_token": tok("bos_token_id"),
        "eos_token": tok("eos_token_id"),
        "unk_token": tok("unknown_token_id"),
        "pad_token": tok("padding_token_id"),
        "add_bos_token": bool(model.meta("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(model.meta("tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(model.meta("{arch}.context_length", 2048)),
    }
    template = model.meta("tokenizer.chat_template")
    if template:
        config["chat_template"] = template
    return config


def write_tokenizer_files(model: GGUFModel, out_dir: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out_dir`."""
    build_tokenizer(model).save(str(out_dir / "tokenizer.json"))
    config = build_tokenizer_config(model)
    _write_json(out_dir / "tokenizer_config.json", config)
    special = {
        k: config[k]
        for k in ("bos_token", "eos_token", "unk_token", "pad_token")
        if config.get(k) is not None
    }
    _write_json(out_dir / "special_tokens_map.json", special)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
