"""What quantization cost: perplexity, KL divergence from the float32 model, top-1 agreement.

llama.cpp's methodology (`llama-perplexity --kl-divergence`): the text is cut into windows of
`ctx` tokens; only the second half of each window is scored, so every scored token has at least
ctx / 2 tokens of context. For each scored position, KL(p_fp32 || p_model) over the whole
vocabulary, and whether both models' most likely next token agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def compare_to_reference(reference: nn.Module, models: dict[str, nn.Module], ids: Tensor,
                         ctx: int = 256) -> dict[str, dict[str, float]]:
    """{name: {"ppl", "kld", "top1", "tokens"}} for the reference (named "fp32") and each model
    over token ids [T]. Windows go one at a time: the reference's log-probabilities for one
    window ([ctx / 2, vocab]) are all that is kept."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if len(ids) < ctx + 1:
        raise ValueError(f"the text has {len(ids)} tokens; give at least {ctx + 1} (ctx {ctx})")
    half = ctx // 2
    sums = {name: {"nll": 0.0, "kld": 0.0, "top1": 0} for name in ("fp32", *models)}
    scored = 0
    for start in range(0, len(ids) - ctx, ctx):
        window = ids[start:start + ctx + 1]
        inputs, targets = window[None, :-1], window[half + 1:]  # score positions half..ctx-1
        ref = F.log_softmax(reference(inputs)[0, half:].float(), dim=-1)  # [ctx/2, vocab]
        for name, model in {"fp32": reference, **models}.items():
            logp = ref if model is reference else F.log_softmax(
                model(inputs)[0, half:].float(), dim=-1)
            s = sums[name]
            s["nll"] -= logp.gather(1, targets[:, None]).sum().item()
            # KL(p || q) = sum p (log p - log q), p the reference
            s["kld"] += (ref.exp() * (ref - logp)).sum().item()
            s["top1"] += (logp.argmax(-1) == ref.argmax(-1)).sum().item()
        scored += len(targets)
    return {name: {"ppl": math.exp(s["nll"] / scored), "kld": s["kld"] / scored,
                   "top1": s["top1"] / scored, "tokens": scored} for name, s in sums.items()}


def quality_table(results: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows for printing: model, perplexity, its change from fp32, mean KLD, top-1 agreement."""
    base = results["fp32"]["ppl"]
    return [[name, f"{r['ppl']:.3f}", f"{100 * (r['ppl'] / base - 1):+.2f}%", f"{r['kld']:.5f}",
             f"{100 * r['top1']:.2f}%"] for name, r in results.items()]
