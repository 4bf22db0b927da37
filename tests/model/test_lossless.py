"""The upcycled default MoE computes what the dense SmolLM2 model does (transformers, fp32)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from moe_lsp.inference.model_store import (  # noqa: E402
    prepare_default_model,
    prepare_dense_model,
)

PROMPTS = [
    "def fibonacci(n):",
    "import os\n\ndef",
    "class Stack:\n    def __init__(self):",
    "for i in range(",
]
NEW_TOKENS = 24
# Any Python a 135M model writes after these prompts contains these pieces.
EXPECTED = {
    "def fibonacci(n):": ["return", "n"],
    "import os\n\ndef": ["(", "):"],
    "class Stack:\n    def __init__(self):": ["self."],
    "for i in range(": [")"],
}
CODE_SAMPLE = (
    "def add(a, b):\n    return a + b\n\n\ndef is_even(n):\n    return n % 2 == 0\n\n\n"
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n"
)


@pytest.fixture(scope="module")
def dirs():
    return prepare_dense_model(progress=False), prepare_default_model(progress=False)


@pytest.fixture(scope="module")
def tokenizer(dirs):
    return transformers.AutoTokenizer.from_pretrained(dirs[1])


@pytest.fixture(scope="module")
def dense(dirs):
    model = transformers.AutoModelForCausalLM.from_pretrained(dirs[0], dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def moe(dirs):
    model = transformers.AutoModelForCausalLM.from_pretrained(dirs[1], dtype=torch.float32)
    return model.eval()


def _greedy(model, ids):
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
        )
    return out[0, ids.shape[1] :].tolist()


def test_configs(dirs, dense, moe):
    config = json.loads((dirs[1] / "config.json").read_text())
    assert config["architectures"] == ["MixtralForCausalLM"]
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (4, 1)
    assert type(dense).__name__ == "LlamaForCausalLM"
    assert type(moe).__name__ == "MixtralForCausalLM"
    n_dense = sum(p.numel() for p in dense.parameters())
    n_moe = sum(p.numel() for p in moe.parameters())
    assert 130e6 < n_dense < 140e6
    assert n_moe > 2.5 * n_dense  # 4 copies of the MLPs


@pytest.mark.parametrize(
    "text",
    [
        "def f(x):\n\treturn  x ** 2  # ünïcødé ✓ 日本語 🙂\n",
        "class A:\n    def m(self):\n        pass\n\n\n\r\n",
        "x = [1, 22, 333, 4444]\nprint(f'{x!r:>10}')\n",
        "<|im_start|>user\nhi<|im_end|>\n",
    ],
)
def test_tokenizer_roundtrips_code(tokenizer, text):
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text


def test_tokenizer_matches_smollm2(tokenizer):
    # SmolLM2 (llama.cpp pre-tokenizer "smollm") splits every digit on its own; no BOS is added.
    assert tokenizer("12345").input_ids == tokenizer.convert_tokens_to_ids(list("12345"))
    # Same ids as transformers' own GGUF tokenizer conversion gives for this GGUF.
    assert tokenizer("def fibonacci(n):").input_ids == [1604, 3987, 46477, 24, 94, 727]
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
    ]


def test_dense_model_writes_code(tokenizer, dense):
    """Fails when the q/k unpermute or the tokenizer is wrong: the model then talks nonsense."""
    ids = tokenizer(CODE_SAMPLE, return_tensors="pt").input_ids
    with torch.no_grad():
        loss = dense(ids, labels=ids).loss.item()
    assert loss < 1.5, loss  # ~0.82 when right, ~2.75 with q/k left permuted
    for prompt, pieces in EXPECTED.items():
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        text = tokenizer.decode(_greedy(dense, ids))
        for piece in pieces:
            assert piece in text, (prompt, text)
        assert text.isascii(), (prompt, text)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_moe_equals_dense(tokenizer, dense, moe, prompt):
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        diff = (dense(ids).logits - moe(ids).logits).abs().max().item()
    assert diff < 1e-3, diff
    assert _greedy(moe, ids) == _greedy(dense, ids)


def _top1_choices(moe, inputs: list) -> dict[int, list[int]]:
    """The expert each MoE layer's gate picks for every token of `inputs` (id tensors)."""
    picked: dict[int, list[int]] = {}

    def keep(layer: int):
        def hook(_module, _inputs, output):
            picked.setdefault(layer, []).extend(output[2].flatten().tolist())

        return hook

    handles = [
        layer.mlp.gate.register_forward_hook(keep(i)) for i, layer in enumerate(moe.model.layers)
    ]
    try:
        with torch.no_grad():
            for ids in inputs:
                moe(ids)
    finally:
        for handle in handles:
            handle.remove()
    return picked


def test_router_spreads_tokens_over_experts(tokenizer, moe):
    """Top-1 routing really picks different experts: this is a MoE, not a relabelled dense MLP."""
    ids = tokenizer(CODE_SAMPLE, return_tensors="pt").input_ids
    picked = [e for choices in _top1_choices(moe, [ids]).values() for e in choices]
    counts = [picked.count(e) for e in range(4)]
    assert sum(counts) == ids.shape[1] * len(moe.model.layers)
    assert sum(c > 0 for c in counts) >= 3, counts


def test_router_is_balanced_on_code_it_was_not_calibrated_on(tokenizer, moe):
    """The replay's modules are held out of the router's calibration; loads stay near even."""
    import importlib
    import inspect

    from moe_lsp.inference.routing import jain
    from moe_lsp.lsp.experts_cli import REPLAY_MODULES

    inputs = [
        tokenizer(inspect.getsource(importlib.import_module(name)), return_tensors="pt").input_ids[
            :, :512
        ]
        for name in REPLAY_MODULES
    ]
    picked = _top1_choices(moe, inputs)
    fairness = [jain([choices.count(e) for e in range(4)]) or 0.0 for choices in picked.values()]
    assert len(fairness) == len(moe.model.layers)
    assert sum(fairness) / len(fairness) > 0.85, fairness  # a random router: about 0.7
    assert min(fairness) > 0.5, fairness  # a random router's worst layer: about 0.3
