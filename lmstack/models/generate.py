"""Plain batched autoregressive generation with a preallocated KV cache.

The simplest correct decoder (prefill once, then one token per step), as in nanoGPT's sample
loop: the parity tests and the training demo use it; lmstack.engine is the serving path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmstack.nn.kv_cache import StaticKVCache


@torch.inference_mode()
def generate(
    model,
    input_ids: Tensor,
    max_new_tokens: int,
    attention_mask: Tensor | None = None,
    temperature: float = 0.0,
    top_k: int = 0,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend left-padded prompts [B, T] by up to max_new_tokens; returns [B, T + new].

    temperature 0 is greedy. Sequences that emit `eos_token_id` keep emitting it, so rows of a
    batch stay aligned (callers cut at the first EOS).
    """
    cfg = model.config
    B, T = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    cache = StaticKVCache(
        cfg.num_hidden_layers, B, cfg.num_key_value_heads, T + max_new_tokens, cfg.head_dim,
        dtype=next(model.parameters()).dtype, device=input_ids.device,
    )
    # Left padding shifts each row's real tokens right, so positions count real tokens only.
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids, context=cache.step(position_ids, attention_mask),
                   logits_to_keep=1)
    cache.advance(T)
    out, done = input_ids, torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        next_logits = logits[:, -1].float()
        if temperature > 0:
            next_logits = next_logits / temperature
            if top_k:
                kth = next_logits.topk(top_k, dim=-1).values[:, -1:]
                next_logits = next_logits.masked_fill(next_logits < kth, float("-inf"))
            probs = next_logits.softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator)[:, 0]
        else:
            token = next_logits.argmax(-1)
        if eos_token_id is not None:
            token = torch.where(done, torch.full_like(token, eos_token_id), token)
            done |= token == eos_token_id
        out = torch.cat([out, token[:, None]], dim=1)
        if done.all() or out.shape[1] == T + max_new_tokens:
            break
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(B, 1)], dim=1)
        position_ids = position_ids[:, -1:] + 1
        logits = model(token[:, None], context=cache.step(position_ids, attention_mask))
        cache.advance(1)
    return out
