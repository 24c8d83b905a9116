"""The step context: everything a decoder's forward pass reads besides its input tokens.

Follows nano-vllm's per-step Context (and vLLM's attention metadata): whoever runs the model
(training, `generate`, the engine) builds one object per forward pass, and every decoder reads
positions, the attention mask and key/value storage from it the same way, never from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from lmstack.nn.attention import additive_mask, build_attention_mask, causal_mask


class StepContext(Protocol):
    """One forward pass over B rows of T new tokens each, as a causal decoder sees it.

    A decoder reads it once per pass (positions, the mask: both built here once, not per
    layer) and hands it to every attention layer, which stores its new keys and values and
    gets back the keys and values to attend over. Where those live (a dense buffer, paged
    blocks, blocks shared between sequences, quantized storage) is the context's business:
    a new cache layout is a new context, not a change to any model.
    """

    positions: Tensor
    """[B, T] int64: each new token's position in its sequence (rotary angle, learned row)."""

    max_context: int
    """The longest row's cached + new tokens: a bound on every position, as a plain int."""

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None
                       ) -> Tensor | None:
        """Additive [B or 1, 1, T, L] mask over the L keys `update` returns (0 = may attend).

        None means no mask is needed: every row attends causally to all L keys with its T
        queries being the last T of them, and T is 1 or L (what SDPA's is_causal expresses).
        """
        ...

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store layer's new keys and values [B, kv_heads, T, d]; return [B, kv_heads, L, d]."""
        ...


KVStore = Callable[[int, Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class PaddedStep:
    """A batch whose rows share one key axis: num_keys columns, the new tokens the last T.

    The plain forward (training, scoring: no cache, num_keys = T) and the dense StaticKVCache
    both look like this; ragged rows are left-padded and hidden by `padding_mask` ([B, L], 1
    for a real token: the Hugging Face attention_mask).
    """

    positions: Tensor
    num_keys: int
    padding_mask: Tensor | None = None
    store: KVStore | None = None

    @property
    def max_context(self) -> int:
        return self.num_keys

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None
                       ) -> Tensor | None:
        return build_attention_mask(
            self.padding_mask, self.positions.shape[1], self.num_keys, True, dtype,
            self.positions.device, sliding_window)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return (k, v) if self.store is None else self.store(layer, k, v)


@dataclass
class PackedStep:
    """Several examples packed into each row, none seeing another (SFT packing, as in
    transformers' DataCollatorWithFlattening): positions restart at every example, and the
    mask is causal within an example and closed across examples (block-diagonal).

    segment_ids [B, T]: which example each token belongs to (1, 2, ...; 0 = padding).
    """

    positions: Tensor
    segment_ids: Tensor

    @property
    def max_context(self) -> int:
        return self.segment_ids.shape[1]

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None
                       ) -> Tensor | None:
        T = self.segment_ids.shape[1]
        same = self.segment_ids[:, :, None] == self.segment_ids[:, None, :]  # [B, T, T]
        allowed = same & causal_mask(T, T, self.segment_ids.device, sliding_window)
        return additive_mask(allowed[:, None], dtype)  # [B, 1, T, T]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return k, v


def packed_step(segment_ids: Tensor) -> PackedStep:
    """The context of a packed batch: each token's position counts from its example's start."""
    B, T = segment_ids.shape
    index = torch.arange(T, device=segment_ids.device).expand(B, T)
    starts = torch.ones_like(segment_ids, dtype=torch.bool)
    starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
    # The index of the latest example start at or before each token.
    start_of = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    return PackedStep(index - start_of, segment_ids)


def resolve_step(inputs: Tensor, attention_mask: Tensor | None, position_ids: Tensor | None,
                 context: StepContext | None) -> StepContext:
    """The context a decoder's forward runs with: the one given, else a plain step."""
    if context is None:
        return plain_step(inputs, attention_mask, position_ids)
    if attention_mask is not None or position_ids is not None:
        raise ValueError("pass attention_mask and position_ids, or a context that carries "
                         "them, not both")
    return context


def plain_step(inputs: Tensor, attention_mask: Tensor | None = None,
               position_ids: Tensor | None = None) -> PaddedStep:
    """The context of a forward pass without a cache, from Hugging Face-style arguments.

    Positions default to 0 .. T-1 whatever the padding, as transformers does, so a padded batch
    scores the same as there.
    """
    B, T = inputs.shape[:2]  # token ids [B, T] or embeddings [B, T, hidden]
    if position_ids is None:
        position_ids = torch.arange(T, device=inputs.device).expand(B, T)
    return PaddedStep(position_ids, T, attention_mask)
