"""Positional information for attention: sinusoidal, learned, rotary and T5 relative buckets.

References: Vaswani et al. 2017 (sinusoidal), GPT-2/BERT (learned), RoFormer (rotary, Su et
al. 2021) with Llama 3's frequency scaling, and T5 (Raffel et al. 2020) relative position buckets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(num_positions: int, dim: int, base: float = 10000.0) -> Tensor:
    """The fixed [num_positions, dim] table of the original Transformer.

    Even channels hold sin(pos / base^(2i/dim)), odd channels the matching cos, so any fixed
    offset is a linear function of the encoding.
    """
    pos = torch.arange(num_positions, dtype=torch.float32)[:, None]
    div = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(pos / div)
    table[:, 1::2] = torch.cos(pos / div)[:, : dim // 2]
    return table


class SinusoidalPositions(nn.Module):
    """Adds the sinusoidal table to token embeddings; nothing to learn."""

    def __init__(self, max_positions: int, dim: int):
        super().__init__()
        self.max_positions, self.dim = max_positions, dim
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """(Re)compute the table; also used after loading a model built on the meta device."""
        self.register_buffer(
            "table", sinusoidal_positions(self.max_positions, self.dim), persistent=False
        )

    def forward(self, position_ids: Tensor) -> Tensor:
        return self.table[position_ids]


class LearnedPositions(nn.Embedding):
    """A trained vector per absolute position (GPT-2's wpe, BERT's position_embeddings)."""


# ---------------------------------------------------------------- rotary (RoPE)

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


def rope_inverse_frequencies(head_dim: int, theta: float, scaling: dict | None = None) -> Tensor:
    """The head_dim/2 rotation speeds θ_i = theta^(-2i/d), optionally rescaled for long context.

    "linear" (position interpolation) slows every frequency by `factor`. "llama3" leaves high
    frequencies alone, slows low ones by `factor`, and blends smoothly in between, as Llama 3.1
    does to stretch 8K-token training to 128K.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    rope_type = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ValueError(
            f"rope scaling type {rope_type!r} is not supported; use one of {SUPPORTED_ROPE_TYPES}"
        )
    factor = float(scaling["factor"])
    if rope_type == "linear":
        return inv_freq / factor
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old_len = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return torch.where(medium, blended, scaled)


class RotaryEmbedding(nn.Module):
    """Produces the cos/sin tables that rotate query and key channel pairs by position.

    Channels are paired as (i, i + d/2) — the "rotate half" layout of Llama/GPT-NeoX
    checkpoints — rather than interleaved (i, i+1) as in the RoFormer paper.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0, scaling: dict | None = None):
        super().__init__()
        self.head_dim, self.theta, self.scaling = head_dim, theta, scaling
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """(Re)compute inv_freq; also used after loading a model built on the meta device."""
        self.register_buffer(
            "inv_freq", rope_inverse_frequencies(self.head_dim, self.theta, self.scaling),
            persistent=False,
        )

    def forward(self, position_ids: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        # Angles in fp32 even under bf16: position * frequency loses precision fast otherwise.
        angles = position_ids[..., None].float() * self.inv_freq
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x's channel pairs by angles whose cos/sin tables broadcast against x."""
    return x * cos + rotate_half(x) * sin


def apply_rotary(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """Rotate [B, heads, T, head_dim] q and k by the [B, T, head_dim] cos/sin tables."""
    cos, sin = cos[:, None], sin[:, None]
    return rotate(q, cos, sin), rotate(k, cos, sin)


# ---------------------------------------------------------------- relative (T5)


def relative_position_bucket(
    relative_position: Tensor, bidirectional: bool = True, num_buckets: int = 32,
    max_distance: int = 128,
) -> Tensor:
    """Map key_pos - query_pos to one of `num_buckets` buckets, as T5 does.

    Half the buckets are exact small offsets; the rest grow logarithmically up to
    `max_distance`, beyond which everything shares the last bucket. Bidirectional attention
    spends half the buckets on each direction; causal attention only looks back.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = torch.log(distance.float().clamp(min=1) / max_exact) / math.log(
        max_distance / max_exact
    )
    large = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(
        max=num_buckets - 1
    )
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """A learned scalar per (bucket, head), added to attention logits (T5's only position cue)."""

    def __init__(
        self, num_heads: int, num_buckets: int = 32, max_distance: int = 128,
        bidirectional: bool = True,
    ):
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.bidirectional = bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """Bias of shape [1, heads, q_len, k_len] (queries are the last q_len of k_len)."""
        device = self.relative_attention_bias.weight.device
        q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
        k_pos = torch.arange(k_len, device=device)[None, :]
        buckets = relative_position_bucket(
            k_pos - q_pos, self.bidirectional, self.num_buckets, self.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]
