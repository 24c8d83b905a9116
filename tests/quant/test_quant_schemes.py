"""Round-to-nearest schemes: each weight comes back within half a step of its group's scale."""

from __future__ import annotations

import pytest
import torch

from lmstack.quant.apply import quantize_weight
from lmstack.quant.schemes import QuantSchemeError, pack_nibbles, quantize_int8, unpack_nibbles


def weight(n=48, k=256):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(n, k, generator=g) * 0.05
    w[3, 7] = 1.5  # an outlier: its row (or group) gets a coarse scale, the others must not
    return w


def step_per_weight(qw):
    """Each weight's quantization step (its group's scale), broadcast to [N, K]."""
    return qw.scale.repeat_interleave(qw.group_size, dim=1)


@pytest.mark.parametrize("scheme,group,symmetric", [
    ("int8", 32, False), ("int8-g32", 32, False), ("int4", 32, False), ("int4", 64, True), ("int4", 128, False),
    ("q8_0", 32, False), ("q4_0", 32, False), ("q4_1", 32, False)])
def test_dequantized_error_within_half_a_step(scheme, group, symmetric):
    w = weight()
    qw = quantize_int8(w, 32) if scheme == "int8-g32" else quantize_weight(w, scheme, group,
                                                                             symmetric)
    err = (qw.dequantize() - w).abs()
    # llama.cpp rounds with the float32 scale, then stores it as fp16: that relative error
    # (2^-11) times the largest code (127 or 8) adds to the half step
    slack = {"q8_0": 127 * 2**-11, "q4_0": 8 * 2**-11, "q4_1": 15 * 2**-11}.get(scheme, 1e-5)
    # Q4_0 maps the group's peak to -8, so the far side tops out at +7: up to one whole step
    half = 1.0 if scheme == "q4_0" else 0.5
    assert (err <= step_per_weight(qw).abs() * (half + slack) + 1e-7).all()
    # groups localise the outlier: rows/groups without it keep a fine step
    assert err[0].max() < 0.25 * err[3].max() or scheme == "int8"


def test_int8_is_per_output_channel_and_int4_groups():
    w = weight()
    assert quantize_weight(w, "int8").scale.shape == (48, 1)
    assert quantize_weight(w, "int4", 64).scale.shape == (48, 4)
    assert quantize_weight(w, "int4", 64).q.shape == (48, 128)  # two codes per byte


def test_symmetric_int4_keeps_zero_exact_and_asymmetric_fits_a_shifted_group():
    w = weight().abs() + 0.1  # all positive: asymmetric spends every level inside [min, max]
    w[:, :32] = 0.0
    sym = quantize_weight(w, "int4", 32, symmetric=True).dequantize()
    assert (sym[:, :32] == 0).all()
    err_sym = (sym - w)[:, 32:].abs().mean()
    err_asym = (quantize_weight(w, "int4", 32).dequantize() - w)[:, 32:].abs().mean()
    assert err_asym < 0.6 * err_sym


def test_nibbles_round_trip_in_llama_cpp_order():
    codes = torch.randint(0, 16, (4, 64), dtype=torch.uint8)
    packed = pack_nibbles(codes)
    assert torch.equal(unpack_nibbles(packed), codes)
    assert packed[0, 0] == codes[0, 0] | (codes[0, 16] << 4)  # byte j: codes j and j + 16


def test_bad_group_and_scheme_say_what_to_pick():
    with pytest.raises(QuantSchemeError, match="group size 48 is not offered; choose one of 32, 64, 128"):
        quantize_weight(weight(), "int4", 48)
    with pytest.raises(QuantSchemeError, match="divides the input size"):
        quantize_weight(weight(k=96), "int4", 64)
    with pytest.raises(QuantSchemeError, match="unknown scheme 'int3'"):
        quantize_weight(weight(), "int3")
