"""Activation-aware scaling for int4 (AWQ: Lin et al. 2023, "AWQ: Activation-aware Weight
Quantization for LLM Compression and Acceleration").

A few input channels carry much larger activations than the rest, and their weights matter
most. Multiplying those weight columns by s > 1 before rounding gives them finer steps; the
input is divided by s so the product is unchanged: (x / s) (W s)^T = x W^T. The division is
folded into the layer before (an RMSNorm's weight for q/k/v and gate/up, up_proj's rows for
down_proj), so it costs nothing at run time. Per group of layers sharing an input, s =
mean|x|^alpha, alpha picked from a grid by the output error on calibration activations
(the paper's search; its weight-clipping search is left out here).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.quant.apply import quantize_weight

GRID = [i / 10 for i in range(11)]  # alpha = 0 is plain round-to-nearest: never worse on X
MAX_ROWS = 1024  # calibration tokens kept per group: enough for the error, cheap to multiply


def scaling_groups(model: nn.Module) -> list[tuple[list[nn.Linear], object]]:
    """(layers sharing one input, what produced that input) per decoder block: the q/k/v after
    input_layernorm, gate/up after post_attention_layernorm, down_proj after up_proj.
    o_proj is left alone: with grouped-query attention its input channels are v's, repeated
    across heads, so one scale per channel cannot be folded back into v_proj."""
    groups = []
    for block in model.model.layers:
        attn, mlp = block.self_attn, block.mlp
        groups += [([attn.q_proj, attn.k_proj, attn.v_proj], block.input_layernorm),
                   ([mlp.gate_proj, mlp.up_proj], block.post_attention_layernorm),
                   ([mlp.down_proj], mlp.up_proj)]
    return groups


@torch.no_grad()
def collect_inputs(model: nn.Module, layers: list[nn.Linear], batches: list[Tensor]
                   ) -> dict[nn.Linear, Tensor]:
    """Each layer's input rows [rows, K] over the calibration batches, captured by forward
    hooks on the float model; each batch keeps evenly spaced rows, MAX_ROWS in all (keeping
    every row of a few hundred sequences would take gigabytes)."""
    per_batch = max(1, MAX_ROWS // len(batches))
    seen: dict[nn.Linear, list[Tensor]] = {lin: [] for lin in layers}

    def keep(module, args, out):
        x = args[0].reshape(-1, args[0].shape[-1])  # [B * T, K]
        pick = torch.linspace(0, len(x) - 1, min(per_batch, len(x))).long()
        seen[module].append(x[pick].float())

    hooks = [lin.register_forward_hook(keep) for lin in layers]
    try:
        for ids in batches:
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return {lin: torch.cat(xs) for lin, xs in seen.items()}


def search_scale(layers: list[nn.Linear], x: Tensor, group: int, symmetric: bool) -> Tensor:
    """The per-input-channel scale s [K] from the grid whose quantized layers best reproduce
    the float outputs on x [rows, K] (squared error summed over the layers)."""
    target = [x @ lin.weight.float().T for lin in layers]  # [rows, N] each
    mean_abs = x.abs().mean(0).clamp(min=1e-8)  # [K]
    best, best_err = torch.ones_like(mean_abs), float("inf")
    for alpha in GRID:
        s = mean_abs.pow(alpha)
        s = s / (s.max() * s.min()).sqrt()  # centred around 1: neither tiny nor huge weights
        err = 0.0
        for lin, y in zip(layers, target, strict=True):
            w = quantize_weight(lin.weight.float() * s, "int4", group, symmetric).dequantize()
            err += ((x / s) @ w.T - y).pow(2).sum().item()
        if err < best_err:
            best, best_err = s, err
    return best


@torch.no_grad()
def apply_awq(model: nn.Module, batches: list[Tensor], group: int = 32,
              symmetric: bool = False) -> nn.Module:
    """Rescale `model`'s weights in place (the float model computes the same function after),
    ready for quantize_model(model, "int4", group, symmetric). `batches`: token ids [B, T] of
    real text, a few hundred sequences in all."""
    groups = scaling_groups(model)
    inputs = collect_inputs(model, [layers[0] for layers, _ in groups], batches)
    for layers, before in groups:
        s = search_scale(layers, inputs[layers[0]], group, symmetric)
        for lin in layers:
            lin.weight.mul_(s.to(lin.weight.dtype))  # columns: W s
        if isinstance(before, nn.Linear):  # up_proj: its output rows feed down_proj's input
            before.weight.div_(s[:, None].to(before.weight.dtype))
            if before.bias is not None:
                before.bias.div_(s.to(before.bias.dtype))
        else:  # an RMSNorm: its weight scales each channel of its output
            before.weight.div_(s.to(before.weight.dtype))
    return model


def text_batches(tokenizer, text: str, sequences: int = 128, seq_len: int = 128,
                 batch: int = 16) -> list[Tensor]:
    """Calibration input: the first `sequences` windows of `seq_len` tokens of `text`, in
    batches [batch, seq_len]."""
    ids = torch.tensor(tokenizer.encode(text, add_special_tokens=False), dtype=torch.long)
    n = min(sequences, len(ids) // seq_len)
    if n == 0:
        raise ValueError(f"calibration text has {len(ids)} tokens; give at least {seq_len}")
    rows = ids[:n * seq_len].view(n, seq_len)
    return list(rows.split(batch))
