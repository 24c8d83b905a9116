"""Q8_0 / Q4_0 / Q4_1: our layout packs to llama.cpp's bytes exactly (the `gguf` package's numpy
reference), and a GGUF block tensor runs through the kernels without re-quantizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType as Q
from gguf import quants

from lmstack.quant.ggml_blocks import from_blocks, quantize_ggml, to_blocks
from lmstack.quant.kernels import quant_matmul
from lmstack.quant.schemes import QuantSchemeError, QuantWeight

TYPES = [Q.Q8_0, Q.Q4_0, Q.Q4_1]


def random_weight(n=24, k=128, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.04
    w[1, :32] = 0.0  # an all-zero block (scale 0) must survive too
    return w


@pytest.mark.parametrize("qtype", TYPES)
def test_packing_equals_gguf_quants_byte_for_byte(qtype):
    w = random_weight()
    ours = to_blocks(quantize_ggml(torch.from_numpy(w), qtype), qtype)
    reference = quants.quantize(w, qtype)
    assert ours.dtype == np.uint8 and ours.shape == reference.shape
    assert np.array_equal(ours, reference)


@pytest.mark.parametrize("qtype", TYPES)
def test_blocks_decode_as_gguf_dequantizes(qtype):
    w = random_weight(seed=1)
    raw = quants.quantize(w, qtype)
    decoded = from_blocks(raw, qtype, w.shape).dequantize().numpy()
    assert np.array_equal(decoded, quants.dequantize(raw, qtype))


def test_a_swapped_nibble_order_is_caught():
    # The deliberate break: high and low nibbles exchanged no longer match llama.cpp's bytes.
    w = random_weight()
    qw = quantize_ggml(torch.from_numpy(w), Q.Q4_1)
    swapped = QuantWeight(qw.kind, (qw.q >> 4) | (qw.q << 4), qw.scale, qw.minimum, qw.shape)
    assert not np.array_equal(to_blocks(swapped, Q.Q4_1), quants.quantize(w, Q.Q4_1))


@pytest.mark.parametrize("batch", [1, 5, 16])
def test_q4_1_tensor_runs_directly_as_its_dequantized_matmul(batch):
    w = random_weight(n=40, k=256, seed=2)
    raw = quants.quantize(w, Q.Q4_1)  # what a GGUF file holds
    qw = from_blocks(raw, Q.Q4_1, w.shape)
    x = torch.randn(batch, 256, generator=torch.Generator().manual_seed(0))
    reference = F.linear(x, torch.from_numpy(quants.dequantize(raw, Q.Q4_1)))
    # same products, summed in another order: float32 rounding only
    torch.testing.assert_close(quant_matmul(x, qw), reference, rtol=1e-5, atol=1e-5)


def test_a_scheme_that_is_not_the_block_type_is_refused():
    qw = quantize_ggml(torch.from_numpy(random_weight()), Q.Q8_0)
    with pytest.raises(QuantSchemeError, match="is not Q4_0"):
        to_blocks(qw, Q.Q4_0)
