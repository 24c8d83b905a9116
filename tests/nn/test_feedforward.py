"""Feed-forward blocks: the GELU MLP (exact erf and tanh forms) and SwiGLU, against their
formulas written with explicit matmuls and elementwise math."""

from __future__ import annotations

import math

import pytest
import torch

from lmstack.nn.feedforward import GeluMLP, SwiGLU, activation

HIDDEN, INTER = 16, 40


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return x.double().apply_(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    c = math.sqrt(2 / math.pi)
    return x.double().apply_(lambda v: 0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v**3))))


def silu(x: torch.Tensor) -> torch.Tensor:
    return x.double().apply_(lambda v: v / (1 + math.exp(-v)))


def linear(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    y = x.double() @ layer.weight.double().T
    return y if layer.bias is None else y + layer.bias.double()


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
    return module


NAIVE_GELU = {"gelu": gelu_erf, "gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh}


@pytest.mark.parametrize("act", sorted(NAIVE_GELU))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@torch.no_grad()
def test_gelu_mlp_matches_naive(act, bias):
    mlp = randomised(GeluMLP(HIDDEN, INTER, act=act, bias=bias))
    x = torch.randn(2, 5, HIDDEN) * 2
    want = linear(NAIVE_GELU[act](linear(x, mlp.c_fc)), mlp.c_proj)
    torch.testing.assert_close(mlp(x).double(), want, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_erf_and_tanh_gelu_are_told_apart():
    """The two forms differ by ~1e-3 at most; the tolerances above are tight enough to see it."""
    mlp = randomised(GeluMLP(HIDDEN, INTER, act="gelu"))
    x = torch.randn(2, 5, HIDDEN) * 2
    wrong = linear(gelu_tanh(linear(x, mlp.c_fc)), mlp.c_proj)
    assert (mlp(x).double() - wrong).abs().max() > 1e-4


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@torch.no_grad()
def test_swiglu_matches_naive(bias):
    mlp = randomised(SwiGLU(HIDDEN, INTER, bias=bias))
    x = torch.randn(2, 5, HIDDEN) * 2
    gated = silu(linear(x, mlp.gate_proj)) * linear(x, mlp.up_proj)
    want = linear(gated, mlp.down_proj)
    torch.testing.assert_close(mlp(x).double(), want, atol=1e-5, rtol=1e-5)
    swapped = linear(silu(linear(x, mlp.up_proj)) * linear(x, mlp.gate_proj), mlp.down_proj)
    assert (mlp(x).double() - swapped).abs().max() > 1e-2  # gate and up are not symmetric


def test_swiglu_parameter_names_follow_llama():
    assert sorted(n for n, _ in SwiGLU(4, 8).named_parameters()) == [
        "down_proj.weight", "gate_proj.weight", "up_proj.weight"]
    assert sorted(n for n, _ in GeluMLP(4, 8).named_parameters()) == [
        "c_fc.bias", "c_fc.weight", "c_proj.bias", "c_proj.weight"]


@pytest.mark.parametrize("name,naive", [("relu", lambda v: max(v, 0.0)),
                                        ("silu", lambda v: v / (1 + math.exp(-v))),
                                        ("swish", lambda v: v / (1 + math.exp(-v)))])
def test_other_activations(name, naive):
    x = torch.linspace(-4, 4, 33)
    torch.testing.assert_close(activation(name)(x).double(), x.double().apply_(naive),
                               atol=1e-6, rtol=1e-6)


def test_unknown_activation_names_the_supported_ones():
    with pytest.raises(ValueError) as err:
        activation("gelu_fast_v9")
    message = str(err.value)
    assert "unknown activation 'gelu_fast_v9'" in message
    for name in ("gelu", "gelu_new", "relu", "silu"):
        assert name in message
    with pytest.raises(ValueError, match="unknown activation"):
        SwiGLU(4, 8, act="nope")
