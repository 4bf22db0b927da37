"""The balanced router: even top-1 loads on hidden states that share one large mean direction."""

from __future__ import annotations

import pytest
import torch

from moe_lsp.inference.router_balance import (
    balanced_router,
    calibration_texts,
    top1_loads,
)
from moe_lsp.inference.routing import jain
from moe_lsp.inference.upcycle import upcycle_state_dict

HIDDEN = 64


def hidden_states(tokens: int, seed: int, offset: float = 80.0) -> torch.Tensor:
    """Tokens like a transformer's: a large shared mean, anisotropic spread around it."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(99))
    mean = mean / mean.norm() * offset
    scales = torch.linspace(3.0, 0.1, HIDDEN)  # a few directions carry most of the spread
    return mean + torch.randn(tokens, HIDDEN, generator=g) * scales


@pytest.mark.parametrize("experts", [2, 4, 8])
def test_balanced_on_tokens_it_never_saw_where_random_is_not(experts: int) -> None:
    calibration, held_out = hidden_states(4000, seed=1), hidden_states(4000, seed=2)
    router = balanced_router(calibration, experts, torch.Generator().manual_seed(0))
    fairness = jain(top1_loads(router, held_out).tolist())
    random = torch.randn(experts, HIDDEN, generator=torch.Generator().manual_seed(0)) * 0.02
    random_fairness = jain(top1_loads(random, held_out).tolist())
    assert fairness is not None and random_fairness is not None
    assert fairness > 0.9, fairness
    assert random_fairness < 0.7, random_fairness  # the mean decides: one expert takes most


def test_rows_ignore_the_shared_direction_and_are_seeded() -> None:
    x = hidden_states(1000, seed=3)
    a = balanced_router(x, 4, torch.Generator().manual_seed(5))
    b = balanced_router(x, 4, torch.Generator().manual_seed(5))
    c = balanced_router(x, 4, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    unit = x.mean(0) / x.mean(0).norm()
    assert (a @ unit).abs().max() < 1e-4
    spread = ((x - x.mean(0)) @ a.T).std(0)
    assert torch.allclose(spread, torch.ones(4), atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "experts", "message"),
    [
        ((1, HIDDEN), 4, "tokens >= 2"),
        ((HIDDEN,), 4, "tokens >= 2"),
        ((10, HIDDEN), 0, "experts must be >= 1"),
    ],
)
def test_bad_inputs_are_refused(shape: tuple[int, ...], experts: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        balanced_router(torch.ones(shape), experts, torch.Generator())


@pytest.mark.parametrize(
    ("modules", "found"),
    [
        (("textwrap", "heapq"), ["textwrap", "heapq"]),
        (("textwrap", "no_such_module_here"), ["textwrap"]),
        (("sys", "builtins"), []),  # built in: no source file
        ((), []),
    ],
)
def test_calibration_texts(modules: tuple[str, ...], found: list[str]) -> None:
    texts = calibration_texts(modules)
    assert list(texts) == found
    assert all("def " in text for text in texts.values())


def dense_state(layers: int = 2, hidden: int = 8, inner: int = 16) -> dict[str, torch.Tensor]:
    state = {"model.embed_tokens.weight": torch.randn(32, hidden)}
    for i in range(layers):
        state[f"model.layers.{i}.mlp.gate_proj.weight"] = torch.randn(inner, hidden)
        state[f"model.layers.{i}.mlp.up_proj.weight"] = torch.randn(inner, hidden)
        state[f"model.layers.{i}.mlp.down_proj.weight"] = torch.randn(hidden, inner)
    return state


def test_upcycle_uses_the_given_routers() -> None:
    routers = {0: torch.full((3, 8), 0.5), 1: torch.full((3, 8), -0.25)}
    out = upcycle_state_dict(dense_state(), experts=3, dtype=torch.float32, routers=routers)
    for layer, router in routers.items():
        assert torch.equal(out[f"model.layers.{layer}.block_sparse_moe.gate.weight"], router)


@pytest.mark.parametrize(
    ("routers", "message"),
    [
        ({0: torch.zeros(3, 8)}, "no router given for layer 1"),
        ({0: torch.zeros(3, 8), 1: torch.zeros(2, 8)}, r"shape \[2, 8\], expected \[3, 8\]"),
        ({0: torch.zeros(3, 7), 1: torch.zeros(3, 8)}, r"shape \[3, 7\]"),
    ],
)
def test_upcycle_refuses_routers_that_do_not_fit(
    routers: dict[int, torch.Tensor], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        upcycle_state_dict(dense_state(), experts=3, routers=routers)
