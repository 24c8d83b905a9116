"""GGUF block formats: unpack llama.cpp's quantized blocks to float32, and pack Q8_0/Q4_0/Q4_1.

Follows ggml-quants.c (`dequantize_row_*`, `quantize_row_*_ref`); the tests hold every format
bit for bit to the `gguf` package's numpy reference, `gguf.quants.(de)quantize`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gguf import GGMLQuantizationType as Q

QK_K = 256  # elements in one K-quant super-block


class QuantTypeError(ValueError):
    """A tensor type this module cannot (de)quantize; the message names it."""


def _f16(raw: np.ndarray) -> np.ndarray:
    """Little-endian half-precision scales, as a column of float32."""
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """[n, 16] packed bytes -> [n, 32]: the low nibbles are elements 0-15, the high 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """[n, 4] bytes of a little-endian uint32 -> [n, 32]: bit j is element j's fifth bit."""
    return np.unpackbits(qh, axis=-1, bitorder="little")


# Every dequantizer takes blocks [n, type_size] of uint8 and returns [n, block_size] float32.
# The common types scale in place (`*=`, `+=`): the same float32 operations as `d * q + m`,
# without two more full-size temporaries (SmolLM2 loads ~1 s faster).
def _q8_0(b: np.ndarray) -> np.ndarray:
    q = b[:, 2:].view(np.int8).astype(np.float32)
    q *= _f16(b[:, :2])
    return q


def _q4_0(b: np.ndarray) -> np.ndarray:
    # Symmetric: stored 0..15 around an implicit zero of 8.
    q = (_nibbles(b[:, 2:]).astype(np.int8) - 8).astype(np.float32)
    q *= _f16(b[:, :2])
    return q


def _q4_1(b: np.ndarray) -> np.ndarray:
    # Asymmetric: a scale and the block's minimum, so no level is spent on the sign.
    q = _nibbles(b[:, 4:]).astype(np.float32)
    q *= _f16(b[:, :2])
    q += _f16(b[:, 2:4])
    return q


def _q5_0(b: np.ndarray) -> np.ndarray:
    q = _nibbles(b[:, 6:]) | (_fifth_bits(b[:, 2:6]) << 4)
    return _f16(b[:, :2]) * (q.astype(np.int8) - 16).astype(np.float32)


def _q5_1(b: np.ndarray) -> np.ndarray:
    q = _nibbles(b[:, 8:]) | (_fifth_bits(b[:, 4:8]) << 4)
    return _f16(b[:, :2]) * q.astype(np.float32) + _f16(b[:, 2:4])


def _k_scales(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K's 12 bytes -> 8 six-bit scales and 8 six-bit minimums: sub-blocks 0-3 keep
    their low six bits in bytes 0-7; 4-7 put four bits in bytes 8-11 and borrow the two top
    bits of bytes 0-7 (ggml's get_scale_min_k4)."""
    low, mid, high = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    scale = np.concatenate([low & 63, (high & 0x0F) | ((low >> 6) << 4)], axis=-1)
    minimum = np.concatenate([mid & 63, (high >> 4) | ((mid >> 6) << 4)], axis=-1)
    return scale.astype(np.float32), minimum.astype(np.float32)


def _k_values(qs: np.ndarray) -> np.ndarray:
    """[n, 128] bytes -> [n, 8, 32]: each 32 bytes hold two sub-blocks, low nibbles first."""
    q = qs.reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    return (q & 0x0F).reshape(-1, 8, 32)


def _q4_k(b: np.ndarray) -> np.ndarray:
    scale, minimum = _k_scales(b[:, 4:16])
    d = (_f16(b[:, :2]) * scale)[..., None]
    m = (_f16(b[:, 2:4]) * minimum)[..., None]
    return (d * _k_values(b[:, 16:]).astype(np.float32) - m).reshape(-1, QK_K)


def _q5_k(b: np.ndarray) -> np.ndarray:
    scale, minimum = _k_scales(b[:, 4:16])
    d = (_f16(b[:, :2]) * scale)[..., None]
    m = (_f16(b[:, 2:4]) * minimum)[..., None]
    # qh[l] bit i is the fifth bit of element l of sub-block i.
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    fifth = (b[:, 16:48].reshape(-1, 1, 32) >> shifts) & 1
    q = _k_values(b[:, 48:]) | (fifth << 4)
    return (d * q.astype(np.float32) - m).reshape(-1, QK_K)


def _q6_k(b: np.ndarray) -> np.ndarray:
    ql, qh = b[:, :128].reshape(-1, 2, 2, 32), b[:, 128:192].reshape(-1, 2, 1, 32)
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    # Each half of 128 elements: quarters 0/1 are the low nibbles of ql's two 32-byte rows,
    # quarters 2/3 their high nibbles; qh gives each quarter two more bits.
    low = np.concatenate([ql & 0x0F, ql >> 4], axis=2)
    high = (qh >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 3
    q = ((low | (high << 4)).astype(np.int8) - 32).astype(np.float32)
    d = (_f16(b[:, 208:210]) * scales).reshape(-1, 16, 1)  # one scale per 16 elements
    return (d * q.reshape(-1, 16, 16)).reshape(-1, QK_K)


def _bf16(b: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32.
    return (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def _f16_values(b: np.ndarray) -> np.ndarray:
    return b.view(np.float16).astype(np.float32)


def _f32(b: np.ndarray) -> np.ndarray:
    return b.view(np.float32).copy()  # a copy: callers own the result, never the file's map


# type -> (elements per block, bytes per block, dequantizer)
BLOCK_FORMATS: dict[Q, tuple[int, int, Callable[[np.ndarray], np.ndarray]]] = {
    Q.F32: (1, 4, _f32),
    Q.F16: (1, 2, _f16_values),
    Q.BF16: (1, 2, _bf16),
    Q.Q8_0: (32, 34, _q8_0),
    Q.Q4_0: (32, 18, _q4_0),
    Q.Q4_1: (32, 20, _q4_1),
    Q.Q5_0: (32, 22, _q5_0),
    Q.Q5_1: (32, 24, _q5_1),
    Q.Q4_K: (QK_K, 144, _q4_k),
    Q.Q5_K: (QK_K, 176, _q5_k),
    Q.Q6_K: (QK_K, 210, _q6_k),
}


def type_name(qtype: int) -> str:
    try:
        return Q(qtype).name
    except ValueError:
        return f"type {qtype}"


def dequantize(raw: np.ndarray, qtype: int, shape: tuple[int, ...]) -> np.ndarray:
    """A new float32 array of `shape` (numpy order: the last dimension is contiguous) holding
    what `raw` (the GGUF bytes of one tensor) encodes."""
    if qtype not in BLOCK_FORMATS:
        raise QuantTypeError(
            f"tensor type {type_name(qtype)} is not supported; lmstack reads "
            f"{', '.join(t.name for t in BLOCK_FORMATS)} (re-quantize the file to one of them)"
        )
    block_size, type_size, unpack = BLOCK_FORMATS[Q(qtype)]
    data = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    n = int(np.prod(shape))
    if n % block_size or data.size != n // block_size * type_size:
        raise QuantTypeError(
            f"{type_name(qtype)} tensor of shape {shape} should hold "
            f"{n // block_size * type_size} bytes, found {data.size}; the file is damaged"
        )
    return unpack(data.reshape(-1, type_size)).reshape(shape)


# ---------------------------------------------------------------- packing (export)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    # C's roundf: .5 goes away from zero (numpy's round goes to even). Computed on the
    # magnitude's fractional part so that no float addition can round it first.
    a = np.abs(x)
    whole = np.floor(a)
    return np.sign(x) * (whole + (a - whole >= 0.5))


def _reciprocal(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    return q[:, :16] | (q[:, 16:] << 4)


def _quant_q8_0(x: np.ndarray) -> np.ndarray:
    d = np.abs(x).max(axis=1, keepdims=True) / np.float32(127)
    q = _round_half_away(x * _reciprocal(d)).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1)


def _quant_q4_0(x: np.ndarray) -> np.ndarray:
    # The scale maps the largest-magnitude value (with its sign) to -8, the one extra level
    # a 4-bit two's-complement-like range has on the negative side.
    peak = np.take_along_axis(x, np.abs(x).argmax(axis=1, keepdims=True), axis=1)
    d = peak / np.float32(-8)
    q = np.trunc(x * _reciprocal(d) + np.float32(8.5)).astype(np.uint8).clip(0, 15)
    return np.concatenate([d.astype(np.float16).view(np.uint8), _pack_nibbles(q)], axis=1)


def _quant_q4_1(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    d = (hi - lo) / np.float32(15)
    q = np.trunc((x - lo) * _reciprocal(d) + np.float32(0.5)).astype(np.uint8).clip(0, 15)
    scales = [d.astype(np.float16).view(np.uint8), lo.astype(np.float16).view(np.uint8)]
    return np.concatenate([*scales, _pack_nibbles(q)], axis=1)


PACKERS: dict[Q, Callable[[np.ndarray], np.ndarray]] = {
    Q.Q8_0: _quant_q8_0, Q.Q4_0: _quant_q4_0, Q.Q4_1: _quant_q4_1,
}


def quantize(x: np.ndarray, qtype: Q) -> np.ndarray:
    """Pack float rows [..., k] (k a multiple of 32) into blocks: uint8 [..., k / 32 * size]."""
    if qtype == Q.F32:
        return x.astype(np.float32)
    if qtype == Q.F16:
        return x.astype(np.float16)
    if qtype not in PACKERS:
        raise QuantTypeError(f"cannot write {type_name(qtype)}; lmstack writes "
                             f"F32, F16, {', '.join(t.name for t in PACKERS)}")
    block_size, type_size, _ = BLOCK_FORMATS[qtype]
    rows = np.ascontiguousarray(x, dtype=np.float32)
    if rows.shape[-1] % block_size:
        raise QuantTypeError(f"{qtype.name} needs rows of a multiple of {block_size} values, "
                             f"got {rows.shape[-1]}")
    blocks = PACKERS[qtype](rows.reshape(-1, block_size))
    return blocks.reshape(*rows.shape[:-1], rows.shape[-1] // block_size * type_size)
