"""Building blocks of Transformers: attention, positions, norms, feed-forward, KV cache."""

from lmstack.nn.attention import GroupedQueryAttention, attend, build_attention_mask, causal_mask
from lmstack.nn.feedforward import GeluMLP, SwiGLU, activation
from lmstack.nn.kv_cache import StaticKVCache
from lmstack.nn.norms import LayerNorm, RMSNorm
from lmstack.nn.positions import (
    LearnedPositions,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositions,
    apply_rotary,
    relative_position_bucket,
    rope_inverse_frequencies,
    sinusoidal_positions,
)

__all__ = [
    "GeluMLP",
    "GroupedQueryAttention",
    "LayerNorm",
    "LearnedPositions",
    "RMSNorm",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SinusoidalPositions",
    "StaticKVCache",
    "SwiGLU",
    "activation",
    "apply_rotary",
    "attend",
    "build_attention_mask",
    "causal_mask",
    "relative_position_bucket",
    "rope_inverse_frequencies",
    "sinusoidal_positions",
]
