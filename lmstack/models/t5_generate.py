"""Greedy seq2seq generation for encoder-decoder models (T5), with or without a KV cache.

As transformers' `generate` for T5 (Raffel et al. 2020): encode once, start the decoder from
decoder_start_token_id, append the argmax token per step, pad rows that have finished.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmstack.nn.kv_cache import StaticKVCache


@torch.inference_mode()
def generate_seq2seq(
    model, input_ids: Tensor, max_new_tokens: int, attention_mask: Tensor | None = None,
    use_cache: bool = True,
) -> Tensor:
    """Decoder ids [B, 1 + new]: the start token, then up to max_new_tokens greedy picks.

    With the cache, each step feeds one token: the self-attention keys and values of earlier
    steps sit in a StaticKVCache, and the encoder's (cross-attention) keys and values are
    computed once up front. Without it, each step re-runs the decoder on the whole prefix:
    the same tokens, slower (what the parity test checks).
    """
    cfg = model.config
    B = input_ids.shape[0]
    eos, pad = cfg.eos_token_id, cfg.pad_token_id or 0
    eos = eos[0] if isinstance(eos, list) else eos
    hidden = model.encode(input_ids, attention_mask)  # [B, T_enc, d_model], once
    cross = model.cross_keys_values(hidden) if use_cache else None
    cache = StaticKVCache(cfg.decoder_layers, B, cfg.num_heads, max_new_tokens + 1, cfg.d_kv,
                          dtype=hidden.dtype, device=hidden.device) if use_cache else None
    out = torch.full((B, 1), cfg.decoder_start_token_id, dtype=torch.long,
                     device=input_ids.device)
    done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        if cache is not None:
            step = out[:, -1:]  # only the newest token; earlier ones are in the cache
            positions = torch.full_like(step, cache.length)
            logits = model.decode(step, hidden, attention_mask, context=cache.step(positions),
                                  cross_kv=cross)
            cache.advance(1)
        else:
            logits = model.decode(out, hidden, attention_mask)
        token = logits[:, -1].argmax(-1)
        token = torch.where(done, torch.full_like(token, pad), token)
        out = torch.cat([out, token[:, None]], dim=1)
        if eos is not None:
            done |= token == eos
            if done.all():
                break
    return out
