"""Perplexity of a causal language model on a text, by sliding windows over its tokens.

Follows the strided evaluation in Hugging Face's "Perplexity of fixed-length models" guide:
each token is scored once, with up to seq_len - stride tokens of context carried over.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def perplexity(
    model: torch.nn.Module,
    ids: Tensor | list[int],
    seq_len: int = 256,
    stride: int | None = None,
    batch_size: int = 8,
    precision: str = "fp32",
) -> dict[str, float]:
    """Mean negative log-likelihood per token (nats) and its exp over `ids` (the first token
    has no context and is not scored). A smaller stride gives each window more context."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    stride = stride or max(1, seq_len // 2)
    if not 0 < stride <= seq_len:
        raise ValueError(f"stride must be in 1..seq_len ({seq_len}), got {stride}")
    if len(ids) < 2:
        raise ValueError("need at least two tokens to score")
    device = next(model.parameters()).device
    windows, prev_end = [], 1  # (begin, end, first scored target position)
    for begin in range(0, len(ids) - 1, stride):
        end = min(begin + seq_len + 1, len(ids))  # +1: inputs [begin, end-1), targets shifted
        windows.append((begin, end, prev_end))
        prev_end = end
        if end == len(ids):
            break
    amp = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    total, count = 0.0, 0
    model.eval()
    # Windows of equal length batch together; only the last one is usually shorter.
    for i in range(0, len(windows), batch_size):
        group = windows[i:i + batch_size]
        for length in sorted({e - b for b, e, _ in group}):
            same = [w for w in group if w[1] - w[0] == length]
            x = torch.stack([ids[b:e] for b, e, _ in same]).to(device)
            targets = x[:, 1:].clone()
            for row, (b, _, first) in enumerate(same):
                targets[row, :first - b - 1] = -100  # already scored by an earlier window
            with amp:
                logits = model(x[:, :-1])
            total += float(F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(),
                                           ignore_index=-100, reduction="sum"))
            count += int((targets != -100).sum())
    loss = total / count
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "tokens": count, "nll_sum": total}


def text_perplexity(model: torch.nn.Module, tokenizer: Any, text: str, **kwargs) -> dict[str, float]:
    """`perplexity` of a text, plus per-character figures that compare across tokenizers."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    out = perplexity(model, ids, **kwargs)
    chars = max(1, len(text) - len(tokenizer.decode(ids[:1])))  # the first token is not scored
    out["characters"] = chars
    out["loss_per_char"] = out["nll_sum"] / chars
    out["bits_per_char"] = out["loss_per_char"] / math.log(2)
    return out
