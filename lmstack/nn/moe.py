"""A sparse mixture-of-experts feed-forward: each token runs through only k of E SwiGLU experts.

Follows Shazeer et al. 2017 (top-k gating), Fedus et al. 2021 "Switch Transformers" (the
load-balancing loss, expert capacity) and Mixtral (Jiang et al. 2024: softmax router, top-2,
the chosen weights renormalised to sum to 1). Parameter names follow Qwen2-MoE / Mixtral-style
checkpoints: `mlp.gate` is the router, `mlp.experts.N.{gate,up,down}_proj` the experts.

The balancing loss is recorded on the module during training (`aux_loss`) rather than returned,
so the decoder's forward keeps its one-tensor signature; `moe_aux_loss(model)` collects it for
the training objective.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lmstack.nn.feedforward import SwiGLU


def load_balancing_loss(router_probs: Tensor, chosen: Tensor) -> Tensor:
    """Switch's auxiliary loss E · Σ_e f_e · P_e for router_probs [N, E], chosen [N, k].

    f_e is the fraction of the N·k assignments that went to expert e, P_e the mean router
    probability of e. Both sum to 1, so the loss is 1 when the router is uniform (P_e = 1/E,
    whatever f is) or the routing perfectly balanced, and reaches E when one expert takes all.
    (transformers' Mixtral counts f per token instead of per assignment: its value is k × this.)
    """
    E = router_probs.shape[-1]
    f = torch.bincount(chosen.reshape(-1), minlength=E).to(router_probs.dtype) / chosen.numel()
    P = router_probs.mean(0)  # [E]
    return E * (f * P).sum()


def expert_capacity(n_tokens: int, n_experts: int, k: int, factor: float) -> int:
    """Most tokens one expert takes in a batch: factor × its fair share of the N·k assignments."""
    return max(1, math.ceil(factor * n_tokens * k / n_experts))


class MoEFeedForward(nn.Module):
    """Route each token to its top-k experts; the output is their router-weighted sum.

    Capacity (Switch) caps the tokens an expert takes during training at `capacity_factor`
    times its fair share; overflow assignments are dropped (that token's residual carries it),
    which keeps per-expert work bounded. At inference every assignment runs, so a token's
    output never depends on which other requests share its batch (the engine relies on that).
    capacity_factor 0 means no cap.
    """

    def __init__(self, hidden: int, intermediate: int, n_experts: int, k: int,
                 capacity_factor: float = 1.25, aux_loss_coef: float = 0.01,
                 act: str = "silu", bias: bool = False):
        super().__init__()
        if not 0 < k <= n_experts:
            raise ValueError(f"experts_per_token must be between 1 and n_experts ({n_experts}), "
                             f"not {k}")
        self.n_experts, self.k = n_experts, k
        self.capacity_factor, self.aux_loss_coef = capacity_factor, aux_loss_coef
        self.gate = nn.Linear(hidden, n_experts, bias=False)  # the router
        self.experts = nn.ModuleList(SwiGLU(hidden, intermediate, act, bias)
                                     for _ in range(n_experts))
        self.aux_loss: Tensor | None = None  # set by each training forward

    def route(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Router probabilities [N, E] (fp32), chosen experts [N, k] and their weights [N, k]."""
        probs = self.gate(tokens).float().softmax(-1)
        weights, chosen = probs.topk(self.k, dim=-1)
        return probs, chosen, weights / weights.sum(-1, keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # [N, hidden]
        probs, chosen, weights = self.route(tokens)
        self.aux_loss = load_balancing_loss(probs, chosen) if self.training else None
        capacity = (expert_capacity(len(tokens), self.n_experts, self.k, self.capacity_factor)
                    if self.training and self.capacity_factor > 0 else None)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token_idx, slot = (chosen == e).nonzero(as_tuple=True)  # assignments to e, in order
            if capacity is not None:
                token_idx, slot = token_idx[:capacity], slot[:capacity]  # first come, first served
            if len(token_idx) == 0:
                continue
            y = expert(tokens[token_idx]) * weights[token_idx, slot, None].to(tokens.dtype)
            out.index_add_(0, token_idx, y)
        return out.view(shape)


def moe_aux_loss(model: nn.Module) -> Tensor | None:
    """The coefficient-weighted balancing loss, averaged over the model's MoE layers, from its
    last training forward; None for a dense model (or one that last ran in eval mode)."""
    layers = [m for m in model.modules()
              if isinstance(m, MoEFeedForward) and m.aux_loss is not None]
    if not layers:
        return None
    return sum(m.aux_loss_coef * m.aux_loss for m in layers) / len(layers)
