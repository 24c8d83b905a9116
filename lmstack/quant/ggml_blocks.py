"""llama.cpp's Q8_0 / Q4_0 / Q4_1 blocks <-> QuantWeight, byte for byte, without re-rounding.

Each block holds 32 weights of a row: Q8_0 is an fp16 scale d and 32 int8 codes (w = d q);
Q4_0 an fp16 d and 16 bytes of nibbles (w = d (q - 8)); Q4_1 fp16 d and minimum m and
nibbles (w = d q + m). All three are a QuantWeight with groups of 32 (Q4_0's minimum is -8 d),
and the nibble order is already ours (lmstack.quant.schemes.pack_nibbles), so a GGUF file's
weights run as they are. Packing from floats is llama.cpp's own rounding, which
lmstack.models.gguf_quants implements (and its tests hold to the `gguf` package).
"""

from __future__ import annotations

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q

from lmstack.models.gguf_quants import BLOCK_FORMATS, quantize
from lmstack.quant.schemes import QuantSchemeError, QuantWeight

GGML_TYPES = {"q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1}


def _f16_column(raw: np.ndarray) -> torch.Tensor:
    """[n, 2] bytes of little-endian fp16 -> float32 [n] (exactly: fp16 fits in fp32)."""
    return torch.from_numpy(np.ascontiguousarray(raw).view(np.float16).astype(np.float32)[:, 0])


def from_blocks(raw: np.ndarray, qtype: Q, shape: tuple[int, int]) -> QuantWeight:
    """The QuantWeight that GGUF tensor bytes `raw` of `shape` [N, K] hold."""
    n, k = shape
    _, size, _ = BLOCK_FORMATS[qtype]
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(n * k // 32, size)
    d = _f16_column(b[:, :2]).view(n, k // 32)
    if qtype == Q.Q8_0:
        codes = torch.from_numpy(b[:, 2:].view(np.int8).copy()).view(n, k)
        return QuantWeight("int8", codes, d, None, (n, k))
    offset = 4 if qtype == Q.Q4_1 else 2
    nibbles = torch.from_numpy(b[:, offset:].copy()).view(n, k // 2)
    minimum = _f16_column(b[:, 2:4]).view(n, k // 32) if qtype == Q.Q4_1 else -8 * d
    return QuantWeight("int4", nibbles, d, minimum, (n, k))


def to_blocks(w: QuantWeight, qtype: Q) -> np.ndarray:
    """The GGUF bytes [N, K / 32 * block bytes] of a QuantWeight made as `qtype` (the inverse of
    from_blocks)."""
    n, k = w.shape
    if w.group_size != 32 or (w.kind == "int8") != (qtype == Q.Q8_0):
        raise QuantSchemeError(f"a {w.kind} weight in groups of {w.group_size} is not "
                               f"{qtype.name}; quantize with scheme {qtype.name.lower()}")
    d = w.scale.numpy().astype(np.float16).reshape(-1, 1).view(np.uint8)
    codes = w.q.numpy().reshape(n * k // 32, -1).view(np.uint8)
    parts = [d, codes]
    if qtype == Q.Q4_1:
        parts.insert(1, w.minimum.numpy().astype(np.float16).reshape(-1, 1).view(np.uint8))
    return np.concatenate(parts, axis=1).reshape(n, -1)


def quantize_ggml(weight: torch.Tensor, qtype: Q) -> QuantWeight:
    """Round `weight` [N, K] to `qtype` exactly as llama.cpp's quantize_row_*_ref does."""
    n, k = weight.shape
    if k % 32:
        raise QuantSchemeError(f"{qtype.name} needs rows of a multiple of 32 weights, got {k}")
    raw = quantize(weight.detach().float().numpy(), qtype)
    return from_blocks(raw, qtype, (n, k))
