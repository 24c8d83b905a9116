"""Structured pruning of a Llama: remove whole attention heads or MLP channels, so the matrices
actually shrink and every matmul gets cheaper (unlike scattered zeros).

Importance, without data, is a weight-magnitude proxy: a query head scores ‖its q_proj rows‖ ·
‖its o_proj columns‖, an MLP channel ‖gate row‖ · ‖up row‖ · ‖down column‖. With a few
calibration tokens it is what the unit actually contributes, as Wanda (Sun et al. 2023) scores
weights: the mean size of its activation (a head's output, a channel's gated value) times the
norm of the output column it is read through. Weights alone miss that a few channels of real
models carry huge activations (Sun et al. 2024, "Massive Activations"); removing one ruins the
model, which the compress benchmark shows. (Michel et al. 2019 and LLM-Pruner, Ma et al. 2023,
use gradients; the mechanics are the same.)
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


@torch.no_grad()
def output_inputs(model: LlamaForCausalLM, calibration: Tensor, name: str) -> list[Tensor]:
    """Per layer, the mean |input| of each column of its `name` projection (o_proj: the heads'
    outputs, down_proj: the MLP channels) over the calibration tokens [B, T]."""
    means: list[Tensor] = []
    hooks = [layer.get_submodule(name).register_forward_hook(
        lambda m, args, out: means.append(args[0].abs().flatten(0, -2).mean(0)))
        for layer in model.model.layers]
    try:
        model(calibration)
    finally:
        for h in hooks:
            h.remove()
    return means


def head_scores(model: LlamaForCausalLM, calibration: Tensor | None = None) -> list[Tensor]:
    """Per layer, [H] importance of each query head (see the module's docstring)."""
    acts = None if calibration is None else output_inputs(model, calibration, "self_attn.o_proj")
    scores = []
    for i, layer in enumerate(model.model.layers):
        attn = layer.self_attn
        H, D = attn.num_heads, attn.head_dim
        o = attn.o_proj.weight.detach().view(-1, H, D).transpose(0, 1).flatten(1).norm(dim=1)
        if acts is None:
            scores.append(attn.q_proj.weight.detach().view(H, -1).norm(dim=1) * o)
        else:
            scores.append(acts[i].view(H, D).mean(1) * o)
    return scores


def channel_scores(model: LlamaForCausalLM, calibration: Tensor | None = None) -> list[Tensor]:
    """Per layer, [intermediate] importance of each MLP channel (see the module's docstring)."""
    acts = None if calibration is None else output_inputs(model, calibration, "mlp.down_proj")
    scores = []
    for i, layer in enumerate(model.model.layers):
        mlp = layer.mlp
        down = mlp.down_proj.weight.detach().norm(dim=0)
        if acts is None:
            scores.append(mlp.gate_proj.weight.detach().norm(dim=1)
                          * mlp.up_proj.weight.detach().norm(dim=1) * down)
        else:
            scores.append(acts[i] * down)
    return scores


def keep_heads(model: LlamaForCausalLM, fraction: float, calibration: Tensor | None = None
               ) -> Keep:
    """Per layer, the query heads to keep: each kv group drops round(fraction · its heads)."""
    _check(model, fraction)
    cfg = model.config
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    drop = round(fraction * group)
    if drop >= group:
        raise ValueError(f"sparsity {fraction} would remove all {group} query heads of a group")
    keep = []
    for scores in head_scores(model, calibration):
        best = scores.view(cfg.num_key_value_heads, group).topk(group - drop, dim=1).indices
        best = best.sort(dim=1).values  # [KV, kept]
        keep.append((best + torch.arange(cfg.num_key_value_heads)[:, None] * group).flatten())
    return keep


def keep_channels(model: LlamaForCausalLM, fraction: float, calibration: Tensor | None = None
                  ) -> Keep:
    """Per layer, the round((1 - fraction) · intermediate) MLP channels with the highest score."""
    _check(model, fraction)
    n = round((1.0 - fraction) * model.config.intermediate_size)
    return [scores.topk(n).indices.sort().values for scores in channel_scores(model, calibration)]


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
