"""Positions: the sinusoidal formula, learned tables, rotary (norms, relative offsets, frequency
scaling) and T5's relative buckets, each against a hand-written scalar version."""

from __future__ import annotations

import math

import pytest
import torch

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

# ---------------------------------------------------------------- sinusoidal and learned


@pytest.mark.parametrize("dim", [16, 7])
def test_sinusoidal_table_is_the_papers_formula(dim):
    table = sinusoidal_positions(50, dim)
    assert table.shape == (50, dim)
    for pos in range(50):
        for c in range(dim):
            angle = pos / 10000 ** (2 * (c // 2) / dim)
            want = math.sin(angle) if c % 2 == 0 else math.cos(angle)
            assert abs(table[pos, c].item() - want) < 2e-5, (pos, c)


def test_sinusoidal_module_looks_up_rows_and_learns_nothing():
    module = SinusoidalPositions(32, 8)
    ids = torch.tensor([[0, 5, 31], [2, 2, 7]])
    assert torch.equal(module(ids), sinusoidal_positions(32, 8)[ids])
    assert list(module.parameters()) == [] and module.state_dict() == {}


def test_learned_positions_are_a_trainable_lookup():
    torch.manual_seed(0)
    module = LearnedPositions(10, 4)
    ids = torch.tensor([[3, 1, 3]])
    out = module(ids)
    for t, pos in enumerate(ids[0].tolist()):
        assert torch.equal(out[0, t], module.weight[pos])
    out.sum().backward()
    grad_rows = module.weight.grad.abs().sum(-1)
    assert grad_rows[3] == pytest.approx(8.0) and grad_rows[1] == pytest.approx(4.0)
    assert grad_rows.count_nonzero() == 2  # untouched positions get no gradient
    assert list(module.state_dict()) == ["weight"]  # HF's wpe.weight / position_embeddings


# ---------------------------------------------------------------- rotary


def naive_inverse_frequencies(head_dim: int, theta: float, scaling: dict | None) -> list[float]:
    """Meta's reference for Llama 3.1's scaling, one frequency at a time."""
    freqs = [theta ** (-2 * i / head_dim) for i in range(head_dim // 2)]
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return freqs
    if kind == "linear":
        return [f / scaling["factor"] for f in freqs]
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(f)
        elif wavelen > old / low:
            out.append(f / factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return out


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
SCALINGS = {
    "default": (10000.0, None),
    "linear": (10000.0, {"rope_type": "linear", "factor": 4.0}),
    "linear-old-key": (10000.0, {"type": "linear", "factor": 2.0}),
    "llama3": (500000.0, LLAMA3),
}


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("name", sorted(SCALINGS))
def test_rope_inverse_frequencies_match_hand_formula(name, head_dim):
    theta, scaling = SCALINGS[name]
    got = rope_inverse_frequencies(head_dim, theta, scaling)
    want = torch.tensor(naive_inverse_frequencies(head_dim, theta, scaling), dtype=torch.float64)
    assert got.shape == (head_dim // 2,)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)


def test_llama3_scaling_exercises_all_three_regimes():
    """Otherwise the test above could pass with the blend formula wrong."""
    base = rope_inverse_frequencies(64, 500000.0)
    scaled = rope_inverse_frequencies(64, 500000.0, LLAMA3)
    ratio = base / scaled
    kept, divided = torch.isclose(ratio, torch.tensor(1.0)), torch.isclose(ratio, torch.tensor(8.0))
    blended = ~kept & ~divided
    assert kept.any() and divided.any() and blended.any()
    assert ((ratio[blended] > 1) & (ratio[blended] < 8)).all()


def test_unknown_rope_type_is_refused():
    with pytest.raises(ValueError, match="'yarn' is not supported"):
        rope_inverse_frequencies(64, 10000.0, {"rope_type": "yarn", "factor": 2.0})


def naive_rotate(x: torch.Tensor, positions: torch.Tensor, inv_freq) -> torch.Tensor:
    """x [B, H, T, D]: channel i and i + D/2 turn together by position · inv_freq[i]."""
    x = x.double()
    out = x.clone()
    half = x.shape[-1] // 2
    for b in range(x.shape[0]):
        for t in range(x.shape[2]):
            for i in range(half):
                a = float(positions[b, t]) * float(inv_freq[i])
                x1, x2 = x[b, :, t, i], x[b, :, t, i + half]
                out[b, :, t, i] = x1 * math.cos(a) - x2 * math.sin(a)
                out[b, :, t, i + half] = x1 * math.sin(a) + x2 * math.cos(a)
    return out


def test_apply_rotary_matches_pairwise_rotation():
    torch.manual_seed(0)
    rope = RotaryEmbedding(16, theta=10000.0)
    q, k = torch.randn(2, 3, 5, 16), torch.randn(2, 1, 5, 16)
    positions = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 40, 41]])
    rq, rk = apply_rotary(q, k, *rope(positions, torch.float32))
    freqs = naive_inverse_frequencies(16, 10000.0, None)
    torch.testing.assert_close(rq.double(), naive_rotate(q, positions, freqs), atol=1e-4, rtol=0)
    torch.testing.assert_close(rk.double(), naive_rotate(k, positions, freqs), atol=1e-4, rtol=0)


def test_rotation_preserves_norms():
    torch.manual_seed(1)
    rope = RotaryEmbedding(32)
    q, k = torch.randn(1, 4, 20, 32), torch.randn(1, 2, 20, 32)
    rq, rk = apply_rotary(q, k, *rope(torch.arange(20)[None] * 37, torch.float32))
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rk.norm(dim=-1), k.norm(dim=-1), atol=1e-4, rtol=1e-5)
    assert (rq - q).abs().max() > 0.1  # and it does rotate


@pytest.mark.parametrize("scaling", [None, LLAMA3], ids=["default", "llama3"])
def test_rotary_score_depends_only_on_offset(scaling):
    """q at position m, k at n: the rotated dot product is a function of m - n alone."""
    torch.manual_seed(2)
    rope = RotaryEmbedding(64, theta=500000.0, scaling=scaling)
    q, k = torch.randn(1, 1, 1, 64), torch.randn(1, 1, 1, 64)

    def score(m: int, n: int) -> float:
        rq, _ = apply_rotary(q, q, *rope(torch.tensor([[m]]), torch.float32))
        rk, _ = apply_rotary(k, k, *rope(torch.tensor([[n]]), torch.float32))
        return (rq * rk).sum().item()

    for offset in (0, 1, 5, 30):
        scores = [score(n + offset, n) for n in (0, 3, 17, 100)]
        assert max(scores) - min(scores) < 1e-3 * (1 + abs(scores[0])), (offset, scores)
    assert abs(score(5, 0) - score(30, 0)) > 1e-2  # different offsets do differ


def test_rotary_tables_in_bf16_keep_fp32_angles():
    rope = RotaryEmbedding(64)
    positions = torch.tensor([[1000, 4000, 8191]])
    cos16, sin16 = rope(positions, torch.bfloat16)
    cos32, sin32 = rope(positions, torch.float32)
    assert cos16.dtype == torch.bfloat16
    assert torch.equal(cos16, cos32.to(torch.bfloat16))
    assert torch.equal(sin16, sin32.to(torch.bfloat16))


# ---------------------------------------------------------------- relative (T5)


def naive_bucket(rel: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """T5's bucketing for one key_pos - query_pos offset, in plain Python."""
    bucket = 0
    if bidirectional:
        num_buckets //= 2
        if rel > 0:
            bucket = num_buckets
        distance = abs(rel)
    else:
        distance = max(-rel, 0)
    max_exact = num_buckets // 2
    if distance < max_exact:
        return bucket + distance
    log_part = math.log(distance / max_exact) / math.log(max_distance / max_exact)
    return bucket + min(max_exact + int(log_part * (num_buckets - max_exact)), num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 40), (8, 20)])
def test_relative_position_bucket_matches_naive_over_grid(bidirectional, num_buckets,
                                                          max_distance):
    n = 300
    rel = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # key_pos - query_pos
    got = relative_position_bucket(rel, bidirectional, num_buckets, max_distance)
    by_offset = {r: naive_bucket(r, bidirectional, num_buckets, max_distance)
                 for r in range(-n + 1, n)}
    want = torch.tensor([[by_offset[j - i] for j in range(n)] for i in range(n)])
    wrong = sorted({(j - i) for i, j in (got != want).nonzero().tolist()})
    assert not wrong, f"offsets bucketed differently: {wrong[:8]}"
    assert got.min() >= 0 and got.max() == num_buckets - 1


def test_relative_position_bucket_matches_transformers_t5():
    from transformers.models.t5.modeling_t5 import T5Attention

    rel = torch.arange(-200, 200)[None, :]
    for bidirectional in (True, False):
        want = T5Attention._relative_position_bucket(rel, bidirectional, 32, 128)
        assert torch.equal(relative_position_bucket(rel, bidirectional, 32, 128), want)


@pytest.mark.parametrize("q_len,k_len", [(6, 6), (1, 9), (3, 9)])
def test_relative_position_bias_shape_and_values(q_len, k_len):
    torch.manual_seed(3)
    bias = RelativePositionBias(num_heads=4, num_buckets=16, max_distance=32,
                                bidirectional=False)
    out = bias(q_len, k_len)
    assert out.shape == (1, 4, q_len, k_len)
    table = bias.relative_attention_bias.weight
    for i in range(q_len):
        pos = k_len - q_len + i
        for j in range(k_len):
            bucket = naive_bucket(j - pos, False, 16, 32)
            assert torch.equal(out[0, :, i, j], table[bucket]), (i, j)
