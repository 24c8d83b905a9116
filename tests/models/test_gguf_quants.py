"""GGUF block formats: for each type a tiny GGUF written with the `gguf` writer, read back and
dequantized by us, bit for bit equal to `gguf.quants.dequantize`; our packers equal its quantize."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf import quants as reference

from lmstack.models import gguf_quants
from lmstack.models.gguf_quants import BLOCK_FORMATS, QuantTypeError, dequantize, quantize

ROWS, COLS = 4, 512  # two K-quant super-blocks a row


def random_blocks(qtype: Q, rng: np.random.Generator) -> np.ndarray:
    """Raw bytes of ROWS x COLS values: quantized by the reference where it can, else random
    bytes with finite half-precision scales (K-quants: gguf-py only dequantizes them)."""
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block: the scale-0 path
    if qtype in (Q.F32, Q.F16):
        return reference.quantize(x, qtype)
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        block_size, type_size, _ = BLOCK_FORMATS[qtype]
        raw = rng.integers(0, 256, (ROWS * COLS // block_size, type_size), dtype=np.uint8)
        scale_at = [208] if qtype == Q.Q6_K else [0, 2]  # d (and dmin) as float16
        for offset in scale_at:
            scales = (rng.random(len(raw)) * 0.01).astype(np.float16)
            raw[:, offset:offset + 2] = scales.view(np.uint8).reshape(-1, 2)
        return raw.reshape(ROWS, -1)
    return reference.quantize(x, qtype)


def written_and_read(tmp_path, qtype: Q, raw: np.ndarray):
    path = tmp_path / f"{qtype.name}.gguf"
    writer = GGUFWriter(path, "llama")
    if qtype in (Q.F32, Q.F16):
        writer.add_tensor("t", raw)
    else:
        writer.add_tensor("t", raw, raw_shape=raw.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (tensor,) = GGUFReader(path).tensors
    return tensor


@pytest.mark.parametrize("qtype", list(BLOCK_FORMATS), ids=lambda t: t.name)
def test_dequantize_matches_reference_bit_for_bit(tmp_path, qtype):
    raw = random_blocks(qtype, np.random.default_rng(int(qtype)))
    tensor = written_and_read(tmp_path, qtype, raw)
    assert tensor.tensor_type == qtype
    shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
    assert shape == (ROWS, COLS)
    ours = dequantize(tensor.data, int(tensor.tensor_type), shape)
    theirs = reference.dequantize(tensor.data, qtype)
    assert ours.dtype == np.float32 and np.isfinite(ours).all()
    assert np.array_equal(ours.view(np.uint32), theirs.reshape(shape).view(np.uint32))


def test_a_wrong_nibble_order_is_caught(monkeypatch):
    """The deliberate break: high nibbles first would still give plausible numbers."""
    raw = random_blocks(Q.Q4_0, np.random.default_rng(0))
    good = dequantize(raw, Q.Q4_0, (ROWS, COLS))
    monkeypatch.setattr(gguf_quants, "_nibbles",
                        lambda qs: np.concatenate([qs >> 4, qs & 0x0F], axis=-1))
    bad = dequantize(raw, Q.Q4_0, (ROWS, COLS))
    assert not np.array_equal(bad, reference.dequantize(raw, Q.Q4_0))
    assert np.array_equal(good, reference.dequantize(raw, Q.Q4_0))


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q4_1], ids=lambda t: t.name)
def test_quantize_matches_reference_bit_for_bit(qtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 256)).astype(np.float32) * rng.random((8, 1)).astype(np.float32)
    x[1, :32] = 0.0
    x[2, :32] = 0.5  # a constant block: max == min
    x[3, 5] = 0.5 / 127 * 3  # values on rounding edges
    ours = quantize(x, qtype)
    assert np.array_equal(ours, reference.quantize(x, qtype))
    back = dequantize(ours, qtype, x.shape)
    step = {Q.Q8_0: 1 / 127, Q.Q4_0: 1 / 7, Q.Q4_1: 1 / 15}[qtype]
    assert np.abs(back - x).max() <= step * 2 * np.abs(x).max()


def test_unsupported_types_are_named():
    with pytest.raises(QuantTypeError, match="Q2_K is not supported"):
        dequantize(np.zeros(84, np.uint8), Q.Q2_K, (256,))
    with pytest.raises(QuantTypeError, match="cannot write Q6_K"):
        quantize(np.zeros((1, 256), np.float32), Q.Q6_K)
    with pytest.raises(QuantTypeError, match="damaged"):
        dequantize(np.zeros(33, np.uint8), Q.Q8_0, (32,))
