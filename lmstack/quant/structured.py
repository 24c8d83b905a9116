"""Structured pruning of a Llama: remove whole attention heads or MLP channels, so the matrices
actually shrink and every matmul gets cheaper (unlike scattered zeros).

Importance is a weight-magnitude proxy, cheap and data-free: a query head scores
‖its q_proj rows‖ · ‖its o_proj columns‖, an MLP channel ‖gate row‖ · ‖up row‖ · ‖down column‖
(Michel et al. 2019 and LLM-Pruner, Ma et al. 2023, use gradients; the mechanics are the same).
Every layer keeps the same number of heads and channels, so the smaller model is still one
LlamaConfig; with grouped-query attention each key/value group loses the same number of query
heads, so the heads-per-group ratio stays whole. A removed head or channel contributes exactly
nothing once its output column is zero, so `mask_*` (same shapes, zeroed columns) and
`shrink` (smaller matrices) compute the same function: the tests hold them to that.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from lmstack.models.llama import LlamaForCausalLM

Keep = list[Tensor]  # per layer, the sorted indices that survive


def _check(model: LlamaForCausalLM, fraction: float) -> None:
    if not isinstance(model, LlamaForCausalLM) or model.config.n_experts:
        raise ValueError("structured pruning handles dense Llama-family models")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"sparsity must be between 0 and 1, not {fraction}")


def head_scores(model: LlamaForCausalLM, layer: int) -> Tensor:
    attn = model.model.layers[layer].self_attn
    H, D = attn.num_heads, attn.head_dim
    q = attn.q_proj.weight.detach().view(H, D, -1).flatten(1).norm(dim=1)  # [H]
    o = attn.o_proj.weight.detach().view(-1, H, D).transpose(0, 1).flatten(1).norm(dim=1)
    return q * o


def keep_heads(model: LlamaForCausalLM, fraction: float) -> Keep:
    """Per layer, the query heads to keep: each kv group drops round(fraction · its heads)."""
    _check(model, fraction)
    cfg = model.config
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    drop = round(fraction * group)
    if drop >= group:
        raise ValueError(f"sparsity {fraction} would remove all {group} query heads of a group")
    keep = []
    for i in range(cfg.num_hidden_layers):
        scores = head_scores(model, i).view(cfg.num_key_value_heads, group)
        best = scores.topk(group - drop, dim=1).indices.sort(dim=1).values  # [KV, kept]
        keep.append((best + torch.arange(cfg.num_key_value_heads)[:, None] * group).flatten())
    return keep


def keep_channels(model: LlamaForCausalLM, fraction: float) -> Keep:
    """Per layer, the round((1 - fraction) · intermediate) MLP channels with the highest score."""
    _check(model, fraction)
    n = round((1.0 - fraction) * model.config.intermediate_size)
    keep = []
    for layer in model.model.layers:
        mlp = layer.mlp
        score = (mlp.gate_proj.weight.detach().norm(dim=1) * mlp.up_proj.weight.detach().norm(dim=1)
                 * mlp.down_proj.weight.detach().norm(dim=0))
        keep.append(score.topk(n).indices.sort().values)
    return keep


def _head_columns(keep: Tensor, head_dim: int) -> Tensor:
    """The rows of q_proj (columns of o_proj) that the kept heads own."""
    return (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()


@torch.no_grad()
def mask_heads(model: LlamaForCausalLM, keep: Keep) -> None:
    """Silence the heads not kept, in place: zero their o_proj columns (shapes unchanged)."""
    for layer, kept in zip(model.model.layers, keep, strict=True):
        o = layer.self_attn.o_proj.weight
        alive = torch.zeros(o.shape[1], dtype=torch.bool)
        alive[_head_columns(kept, layer.self_attn.head_dim)] = True
        o[:, ~alive] = 0


@torch.no_grad()
def mask_channels(model: LlamaForCausalLM, keep: Keep) -> None:
    """Silence the MLP channels not kept, in place: zero their down_proj columns."""
    for layer, kept in zip(model.model.layers, keep, strict=True):
        down = layer.mlp.down_proj.weight
        alive = torch.zeros(down.shape[1], dtype=torch.bool)
        alive[kept] = True
        down[:, ~alive] = 0


@torch.no_grad()
def shrink(model: LlamaForCausalLM, heads: Keep | None = None, channels: Keep | None = None
           ) -> LlamaForCausalLM:
    """A new, smaller model holding only the kept heads and channels (the original is left)."""
    cfg = model.config
    state = {k: v.clone() for k, v in model.state_dict().items()}
    changes = {}
    if heads is not None:
        changes |= {"num_attention_heads": len(heads[0]), "head_dim": cfg.head_dim}
        for i, kept in enumerate(heads):
            rows = _head_columns(kept, cfg.head_dim)
            prefix = f"model.layers.{i}.self_attn."
            for key in ("q_proj.weight", "q_proj.bias"):
                if prefix + key in state:
                    state[prefix + key] = state[prefix + key][rows]
            state[prefix + "o_proj.weight"] = state[prefix + "o_proj.weight"][:, rows]
    if channels is not None:
        changes["intermediate_size"] = len(channels[0])
        for i, kept in enumerate(channels):
            prefix = f"model.layers.{i}.mlp."
            for key in ("gate_proj.weight", "gate_proj.bias", "up_proj.weight", "up_proj.bias"):
                if prefix + key in state:
                    state[prefix + key] = state[prefix + key][kept]
            state[prefix + "down_proj.weight"] = state[prefix + "down_proj.weight"][:, kept]
    small = LlamaForCausalLM(dataclasses.replace(cfg, **changes))
    small.load_state_dict(state)
    return small.to(next(model.parameters()).dtype).eval()
