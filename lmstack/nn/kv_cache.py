"""A preallocated key/value cache for autoregressive decoding.

Each decoding step appends one token's keys and values per layer instead of recomputing the
whole prefix (the trick every inference engine starts from; see vLLM for the paged variant).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmstack.nn.step_context import PaddedStep


class StaticKVCache:
    """Fixed-size [layers, batch, kv_heads, max_len, head_dim] buffers filled left to right.

    All sequences in the batch share one write position (`length`), so ragged prompts are left
    padded and masked. Preallocation keeps decoding free of per-step allocation and copying.
    A forward pass reads it through `step`; its owner calls `advance` once the pass is done.
    """

    def __init__(
        self, num_layers: int, batch_size: int, num_kv_heads: int, max_length: int,
        head_dim: int, dtype: torch.dtype = torch.float32, device=None,
    ):
        shape = (num_layers, batch_size, num_kv_heads, max_length, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_length = max_length
        self.length = 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        end = self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(
                f"KV cache holds {self.max_length} tokens but {end} were requested; "
                "create the cache with a larger max_length"
            )
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def step(self, positions: Tensor, padding_mask: Tensor | None = None) -> PaddedStep:
        """The step context for T = positions.shape[1] new tokens after the `length` cached.

        padding_mask is [B, length + T], 1 for real tokens (left padding is 0).
        """
        return PaddedStep(positions, self.length + positions.shape[1], padding_mask,
                          self.update)

    def advance(self, n: int) -> None:
        """Called by the cache's owner once all layers have stored this step's n tokens."""
        self.length += n
