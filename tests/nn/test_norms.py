"""LayerNorm and RMSNorm against their formulas written out with sums and square roots, for
fp32 and bf16 inputs."""

from __future__ import annotations

import math

import pytest
import torch

from lmstack.nn.norms import LayerNorm, RMSNorm

DIM = 24


def naive_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     eps: float) -> torch.Tensor:
    """Row by row in float64: centre, divide by the (biased) standard deviation, scale, shift."""
    x = x.double()
    out = torch.empty_like(x)
    rows = x.reshape(-1, x.shape[-1])
    flat = out.view(-1, x.shape[-1])
    for r, row in enumerate(rows):
        values = row.tolist()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        inv = 1 / math.sqrt(var + eps)
        for c, v in enumerate(values):
            y = (v - mean) * inv * weight[c].item()
            flat[r, c] = y + (bias[c].item() if bias is not None else 0.0)
    return out


def naive_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Row by row in float64: divide by the root mean square, then scale (no centring)."""
    x = x.double()
    out = torch.empty_like(x)
    rows = x.reshape(-1, x.shape[-1])
    flat = out.view(-1, x.shape[-1])
    for r, row in enumerate(rows):
        values = row.tolist()
        inv = 1 / math.sqrt(sum(v * v for v in values) / len(values) + eps)
        for c, v in enumerate(values):
            flat[r, c] = v * inv * weight[c].item()
    return out


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(1.0, 0.5)
    return module


# bf16 keeps 8 significant bits: results may differ from the exact value by a couple of ulps.
TOL = {torch.float32: {"atol": 1e-5, "rtol": 1e-5}, torch.bfloat16: {"atol": 3e-2, "rtol": 2e-2}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_layer_norm_matches_naive(dtype, bias):
    norm = randomised(LayerNorm(DIM, eps=1e-5, bias=bias)).to(dtype)
    x = (torch.randn(3, 5, DIM) * 4 + 2).to(dtype)  # an offset, so centring matters
    got = norm(x)
    assert got.dtype == dtype
    want = naive_layer_norm(x, norm.weight.double(), None if norm.bias is None
                            else norm.bias.double(), norm.eps)
    torch.testing.assert_close(got.double(), want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_rms_norm_matches_naive(dtype):
    norm = randomised(RMSNorm(DIM, eps=1e-6)).to(dtype)
    x = (torch.randn(3, 5, DIM) * 4 + 2).to(dtype)
    got = norm(x)
    assert got.dtype == dtype
    want = naive_rms_norm(x, norm.weight.double(), norm.eps)
    torch.testing.assert_close(got.double(), want, **TOL[dtype])
    # RMSNorm does not centre: LayerNorm's answer must be far away, or the test proves nothing.
    centred = naive_layer_norm(x, norm.weight.double(), None, norm.eps)
    assert (got.double() - centred).abs().max() > 0.1


def test_rms_norm_bf16_rounds_once():
    """Statistics and scaling in fp32, one rounding to bf16 at the end (as Llama does): the
    output is the exact value rounded to bf16. Doing the arithmetic in bf16 instead leaves
    about a third of the entries an ulp or more away."""
    torch.manual_seed(1)
    norm = RMSNorm(4096).to(torch.bfloat16)
    x = (torch.randn(2, 4096) * 300).to(torch.bfloat16)
    exact = naive_rms_norm(x, torch.ones(4096, dtype=torch.float64), norm.eps)
    same = (norm(x) == exact.to(torch.bfloat16)).double().mean().item()
    assert same > 0.99, f"only {same:.1%} of entries equal the correctly rounded value"


def test_eps_is_used():
    x = torch.full((1, DIM), 1e-4)
    want = naive_rms_norm(x, torch.ones(DIM), 1e-2)
    torch.testing.assert_close(RMSNorm(DIM, eps=1e-2)(x).double(), want)
    assert RMSNorm(DIM, eps=1e-2)(x).max() < 0.01  # eps dominates a tiny input
