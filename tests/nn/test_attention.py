"""Attention (MHA, GQA, MQA; causal, padding, bidirectional and sliding-window masks; KV cache)
checked against a loop-by-loop softmax(q·k/√d)·v written here, in float64."""

from __future__ import annotations

import math

import pytest
import torch
from test_positions import naive_rotate  # the one naive RoPE reference (tests/nn is on sys.path)

from lmstack.nn import attention
from lmstack.nn.attention import (
    GroupedQueryAttention,
    attend,
    build_attention_mask,
    causal_mask,
)
from lmstack.nn.kv_cache import StaticKVCache
from lmstack.nn.positions import RotaryEmbedding

HIDDEN, HEADS, T = 32, 4, 7


# ---------------------------------------------------------------- naive references


def naive_allowed(
    pad: torch.Tensor | None, batch: int, q_len: int, k_len: int, causal: bool,
    window: int | None = None,
) -> torch.Tensor:
    """[B, q_len, k_len] booleans, one Python decision per (query, key) pair."""
    allowed = torch.zeros(batch, q_len, k_len, dtype=torch.bool)
    for b in range(batch):
        for i in range(q_len):
            pos = k_len - q_len + i  # queries are the newest q_len of the k_len positions
            for j in range(k_len):
                ok = pad is None or bool(pad[b, j])
                if causal:
                    ok = ok and j <= pos
                if window is not None:
                    ok = ok and pos - j < window
                allowed[b, i, j] = ok
    return allowed


def naive_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """q [B, H, Tq, D], k/v [B, KV, Tk, D]; query head h reads key/value head h // (H / KV).

    Rows with no allowed key are left at zero: callers never compare them.
    """
    q, k, v = q.double(), k.double(), v.double()
    B, H, Tq, D = q.shape
    KV, Tk = k.shape[1], k.shape[2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    out = torch.zeros(B, H, Tq, D, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            g = h // (H // KV)
            for i in range(Tq):
                keys = [j for j in range(Tk) if allowed[b, i, j]]
                if not keys:
                    continue
                scores = [float(torch.dot(q[b, h, i], k[b, g, j])) * scale for j in keys]
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                total = sum(weights)
                for w, j in zip(weights, keys):
                    out[b, h, i] += w / total * v[b, g, j]
    return out


@torch.no_grad()
def naive_module(
    attn: GroupedQueryAttention, x: torch.Tensor, allowed: torch.Tensor,
    positions: torch.Tensor | None = None, inv_freq: torch.Tensor | None = None,
) -> torch.Tensor:
    """The whole block by hand: projections as x @ Wᵀ + b, heads split, attention, o_proj."""
    x = x.double()
    B, Tq, _ = x.shape

    def project(lin: torch.nn.Linear, heads: int) -> torch.Tensor:
        y = x @ lin.weight.double().T
        if lin.bias is not None:
            y = y + lin.bias.double()
        return y.reshape(B, Tq, heads, attn.head_dim).permute(0, 2, 1, 3)

    q = project(attn.q_proj, attn.num_heads)
    k = project(attn.k_proj, attn.num_kv_heads)
    v = project(attn.v_proj, attn.num_kv_heads)
    if positions is not None:
        q, k = naive_rotate(q, positions, inv_freq), naive_rotate(k, positions, inv_freq)
    heads = naive_attention(q, k, v, allowed)
    merged = heads.permute(0, 2, 1, 3).reshape(B, Tq, -1)
    out = merged @ attn.o_proj.weight.double().T
    return out if attn.o_proj.bias is None else out + attn.o_proj.bias.double()


def comparable_rows(allowed: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
    """[B, Tq] queries worth comparing: real tokens that may attend to at least one key."""
    rows = allowed.any(-1)
    if pad is not None:
        rows &= pad[:, -allowed.shape[1]:].bool()
    return rows


# ---------------------------------------------------------------- masks


def pad_mask(kind: str, batch: int = 3, length: int = T) -> torch.Tensor | None:
    if kind == "none":
        return None
    mask = torch.ones(batch, length, dtype=torch.long)
    if kind == "right":
        mask[1, length - 2:] = 0
        mask[2, 3:] = 0
    else:  # left
        mask[1, :2] = 0
        mask[2, : length - 3] = 0
    return mask


@pytest.mark.parametrize("q_len,k_len,window", [(5, 5, None), (2, 6, None), (1, 4, None),
                                                (6, 6, 3), (3, 8, 2)])
def test_causal_mask_matches_naive(q_len, k_len, window):
    got = causal_mask(q_len, k_len, sliding_window=window)
    want = naive_allowed(None, 1, q_len, k_len, causal=True, window=window)[0]
    assert torch.equal(got, want)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pad", ["none", "right", "left"])
@pytest.mark.parametrize("q_len,k_len", [(T, T), (3, T), (1, T)])
def test_build_attention_mask_matches_naive(causal, pad, q_len, k_len):
    padding = pad_mask(pad)
    mask = build_attention_mask(padding, q_len, k_len, causal, torch.float32)
    want = naive_allowed(padding, 3, q_len, k_len, causal)
    if mask is None:
        # The fast path: only allowed when SDPA's own is_causal (or nothing) says the same.
        assert padding is None and (not causal or q_len in (1, k_len))
        return
    assert mask.shape[-2:] == (q_len, k_len)
    lowest = torch.finfo(torch.float32).min
    assert torch.equal(mask.expand(3, 1, q_len, k_len)[:, 0] == 0, want)
    assert torch.all((mask == 0) | (mask == lowest))


def test_sliding_window_mask_only_when_it_binds():
    assert build_attention_mask(None, 4, 4, True, torch.float32, sliding_window=8) is None
    mask = build_attention_mask(None, 6, 6, True, torch.float32, sliding_window=2)
    assert torch.equal(mask[0, 0] == 0, naive_allowed(None, 1, 6, 6, True, window=2)[0])


# ---------------------------------------------------------------- attend()


@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("pad,causal", [("none", True), ("right", True), ("left", True),
                                        ("none", False), ("right", False)])
def test_attend_matches_naive(kv_heads, pad, causal):
    torch.manual_seed(0)
    B, D = 3, 8
    q = torch.randn(B, HEADS, T, D)
    k, v = torch.randn(B, kv_heads, T, D), torch.randn(B, kv_heads, T, D)
    padding = pad_mask(pad, B)
    mask = build_attention_mask(padding, T, T, causal, torch.float32)
    got = attend(q, k, v, mask, is_causal=causal)
    allowed = naive_allowed(padding, B, T, T, causal)
    rows = comparable_rows(allowed, padding)
    want = naive_attention(q, k, v, allowed)
    assert torch.isfinite(got).all(), "fully masked (left-pad) rows must not produce NaN"
    torch.testing.assert_close(got.double().transpose(1, 2)[rows],
                               want.transpose(1, 2)[rows], atol=1e-5, rtol=1e-5)


def test_attend_custom_scale_and_queries_behind_keys():
    """Fewer queries than keys (a prefill chunk after a cache) with a non-default scale."""
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 4, 3, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    mask = build_attention_mask(None, 3, 6, True, torch.float32)
    got = attend(q, k, v, mask, is_causal=True, scale=0.5)
    want = naive_attention(q, k, v, naive_allowed(None, 2, 3, 6, True), scale=0.5)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pad", ["none", "left"])
def test_gqa_by_repeating_heads_matches_naive(monkeypatch, pad):
    """The path for old torch (and CUDA with a mask): k and v copied once per query head."""
    monkeypatch.setattr(attention, "_SDPA_HAS_GQA", False)
    torch.manual_seed(4)
    q, k, v = torch.randn(3, 4, T, 8), torch.randn(3, 2, T, 8), torch.randn(3, 2, T, 8)
    padding = pad_mask(pad)
    got = attend(q, k, v, build_attention_mask(padding, T, T, True, q.dtype), is_causal=True)
    allowed = naive_allowed(padding, 3, T, T, True)
    rows = comparable_rows(allowed, padding)
    want = naive_attention(q, k, v, allowed)
    torch.testing.assert_close(got.double().transpose(1, 2)[rows], want.transpose(1, 2)[rows],
                               atol=1e-5, rtol=1e-5)


def test_gqa_grouping_is_consecutive_not_strided():
    """Query heads 0,1 share kv head 0 (as HF's repeat_kv), not heads 0,2: make it visible."""
    torch.manual_seed(2)
    q, k, v = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    got = attend(q, k, v, is_causal=True).double()
    allowed = naive_allowed(None, 1, 5, 5, True)
    strided = naive_attention(q, k[:, [0, 1, 0, 1]], v[:, [0, 1, 0, 1]], allowed)
    assert (got - strided).abs().max() > 1e-2
    torch.testing.assert_close(got, naive_attention(q, k, v, allowed), atol=1e-5, rtol=1e-5)



@pytest.mark.parametrize("kv_heads", [2, 1], ids=["gqa", "mqa"])
@pytest.mark.parametrize("masked", [False, True])
def test_one_query_per_row_groups_heads_consecutively(kv_heads, masked):
    """Decoding (one query) runs each kv head's query heads as its queries: same answer."""
    torch.manual_seed(5)
    q, k, v = torch.randn(3, 4, 1, 8), torch.randn(3, kv_heads, 6, 8), torch.randn(3, kv_heads, 6, 8)
    padding = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1], [0] * 5 + [1]]) if masked else None
    mask = build_attention_mask(padding, 1, 6, True, torch.float32)
    got = attend(q, k, v, mask, is_causal=True).double()
    want = naive_attention(q, k, v, naive_allowed(padding, 3, 1, 6, True))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

# ---------------------------------------------------------------- the module


def make_attention(kv_heads: int, bias: bool = True) -> GroupedQueryAttention:
    torch.manual_seed(3)
    attn = GroupedQueryAttention(HIDDEN, HEADS, kv_heads, qkv_bias=bias, o_bias=bias)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn.eval()


MASK_CASES = {
    "causal": {"pad": "none", "causal": True, "window": None},
    "causal-right-pad": {"pad": "right", "causal": True, "window": None},
    "causal-left-pad": {"pad": "left", "causal": True, "window": None},
    "bidirectional": {"pad": "none", "causal": False, "window": None},
    "bidirectional-pad": {"pad": "right", "causal": False, "window": None},
    "sliding-window": {"pad": "none", "causal": True, "window": 3},
    "sliding-window-left-pad": {"pad": "left", "causal": True, "window": 3},
}


@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_module_matches_naive(kv_heads, case):
    spec = MASK_CASES[case]
    attn = make_attention(kv_heads)
    x = torch.randn(3, T, HIDDEN)
    padding = pad_mask(spec["pad"])
    mask = build_attention_mask(padding, T, T, spec["causal"], x.dtype,
                                sliding_window=spec["window"])
    with torch.no_grad():
        got = attn(x, mask, is_causal=spec["causal"])
    allowed = naive_allowed(padding, 3, T, T, spec["causal"], spec["window"])
    rows = comparable_rows(allowed, padding)
    want = naive_module(attn, x, allowed)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double()[rows], want[rows], atol=1e-5, rtol=1e-5)


def test_module_with_rotary_matches_naive():
    attn = make_attention(2, bias=False)
    rope = RotaryEmbedding(attn.head_dim, theta=100.0)
    x = torch.randn(2, T, HIDDEN)
    positions = torch.stack([torch.arange(T), torch.arange(T) + 11])  # the second row is offset
    with torch.no_grad():
        got = attn(x, None, rope(positions, x.dtype))
    want = naive_module(attn, x, naive_allowed(None, 2, T, T, True), positions, rope.inv_freq)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_mismatched_head_counts_are_refused():
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        GroupedQueryAttention(HIDDEN, 4, 3)


# ---------------------------------------------------------------- with a KV cache


def run_incremental(
    attn: GroupedQueryAttention, x: torch.Tensor, chunks: list[int],
    padding: torch.Tensor | None, rope: RotaryEmbedding, window: int | None = None,
) -> torch.Tensor:
    """Feed x chunk by chunk through a StaticKVCache, as a decoder would."""
    B = x.shape[0]
    cache = StaticKVCache(1, B, attn.num_kv_heads, x.shape[1] + 2, attn.head_dim)
    outs, start = [], 0
    for n in chunks:
        end = start + n
        mask = build_attention_mask(None if padding is None else padding[:, :end], n, end,
                                    True, x.dtype, sliding_window=window)
        positions = torch.arange(start, end).expand(B, n)
        with torch.no_grad():
            outs.append(attn(x[:, start:end], mask, rope(positions, x.dtype), cache))
        cache.advance(n)
        start = end
    assert start == x.shape[1] and cache.length == start
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("pad", ["none", "left"])
@pytest.mark.parametrize("window", [None, 3], ids=["full", "window3"])
def test_incremental_with_cache_equals_full_forward(kv_heads, pad, window):
    attn = make_attention(kv_heads)
    rope = RotaryEmbedding(attn.head_dim)
    x = torch.randn(3, T, HIDDEN)
    padding = pad_mask(pad)
    positions = torch.arange(T).expand(3, T)
    mask = build_attention_mask(padding, T, T, True, x.dtype, sliding_window=window)
    with torch.no_grad():
        full = attn(x, mask, rope(positions, x.dtype))
    stepped = run_incremental(attn, x, [3, 1, 2, 1], padding, rope, window)
    allowed = naive_allowed(padding, 3, T, T, True, window)
    rows = comparable_rows(allowed, padding)
    torch.testing.assert_close(stepped[rows], full[rows], atol=1e-5, rtol=1e-5)
    want = naive_module(attn, x, allowed, positions, rope.inv_freq)
    torch.testing.assert_close(stepped.double()[rows], want[rows], atol=1e-4, rtol=1e-4)
