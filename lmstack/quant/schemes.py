"""Round-to-nearest weight quantization: int8 per output channel, int4 in groups.

A quantized weight W [N, K] is integer codes plus float scales shared by a row (int8) or by
`group` consecutive weights of a row (int4), decoded as

    int8:  w = scale * q                 q in [-127, 127]      (symmetric, zero is exact)
    int4:  w = scale * q + minimum       q in [0, 15]

Symmetric int4 is the second form with minimum = -8 * scale (llama.cpp's Q4_0); asymmetric
spends no level on a sign (Q4_1, and the "zero point" of GPTQ/AWQ checkpoints, since
scale * (q - zero) = scale * q - scale * zero). One decoding rule for all int4 schemes means
one kernel (lmstack/quant/kernels.cpp). Groups are multiples of 32 because 4-bit codes are
stored two per byte in llama.cpp's block-of-32 order (see pack_nibbles).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

GROUP_SIZES = (32, 64, 128)


class QuantSchemeError(ValueError):
    """A scheme or group size this module does not offer, or a weight shape it cannot take."""


@dataclass
class QuantWeight:
    """Codes and scales of one [N, K] weight. kind "int8": q int8 [N, K], scale [N, G];
    kind "int4": q uint8 [N, K / 2] (packed nibbles), scale and minimum [N, G]; G groups per
    row, each of K / G weights."""

    kind: str
    q: Tensor
    scale: Tensor
    minimum: Tensor | None
    shape: tuple[int, int]

    @property
    def group_size(self) -> int:
        return self.shape[1] // self.scale.shape[1]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size()
                   for t in (self.q, self.scale, self.minimum) if t is not None)

    def dequantize(self) -> Tensor:
        """The float32 [N, K] weight the codes stand for."""
        n, k = self.shape
        g = self.scale.shape[1]
        if self.kind == "int8":
            return (self.q.float().view(n, g, -1) * self.scale[..., None]).view(n, k)
        codes = unpack_nibbles(self.q).float().view(n, g, -1)
        return (codes * self.scale[..., None] + self.minimum[..., None]).view(n, k)


def pack_nibbles(codes: Tensor) -> Tensor:
    """uint8 codes [N, K] in 0..15 -> [N, K / 2]: per block of 32, byte j holds code j low and
    code j + 16 high (llama.cpp's Q4_0/Q4_1 layout, so GGUF blocks are used as they are)."""
    n, k = codes.shape
    blocks = codes.view(n, k // 32, 2, 16)
    return (blocks[:, :, 0] | (blocks[:, :, 1] << 4)).reshape(n, k // 2)


def unpack_nibbles(packed: Tensor) -> Tensor:
    """The inverse of pack_nibbles: [N, K / 2] bytes -> uint8 codes [N, K]."""
    n, half = packed.shape
    blocks = packed.view(n, half // 16, 1, 16)
    return torch.cat([blocks & 0x0F, blocks >> 4], dim=2).reshape(n, half * 2)


def _check_groups(k: int, group: int) -> None:
    if group not in GROUP_SIZES:
        raise QuantSchemeError(f"group size {group} is not offered; choose one of "
                               f"{', '.join(map(str, GROUP_SIZES))}")
    if k % group:
        raise QuantSchemeError(f"rows of {k} weights do not split into groups of {group}; "
                               "pick a group size that divides the input size")


def quantize_int8(weight: Tensor, group: int | None = None) -> QuantWeight:
    """Symmetric int8: scale = max|w| / 127 per output channel (row), or per `group` weights."""
    w = weight.detach().float()
    n, k = w.shape
    if group is not None:
        _check_groups(k, group)
    g = w.view(n, 1 if group is None else k // group, -1)  # [N, G, K / G]
    scale = g.abs().amax(dim=2, keepdim=True) / 127
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)  # an all-zero row stays 0
    q = torch.round(g / safe).clamp(-127, 127).to(torch.int8).view(n, k)
    return QuantWeight("int8", q, scale[..., 0], None, (n, k))


def quantize_int4(weight: Tensor, group: int = 32, symmetric: bool = False) -> QuantWeight:
    """int4 in groups of `group` weights. Symmetric: scale = max|w| / 7 around an implicit zero
    of 8 (codes 1..15 used, as zero must stay exact); asymmetric: the group's [min, max] split
    into 15 steps."""
    w = weight.detach().float()
    n, k = w.shape
    _check_groups(k, group)
    g = w.view(n, k // group, group)  # [N, G, group]
    if symmetric:
        scale = g.abs().amax(dim=2, keepdim=True) / 7
        lo = -8 * scale
    else:
        lo = g.amin(dim=2, keepdim=True)
        scale = (g.amax(dim=2, keepdim=True) - lo) / 15
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    codes = torch.round((g - lo) / safe).clamp(0, 15).to(torch.uint8).view(n, k)
    return QuantWeight("int4", pack_nibbles(codes), scale[..., 0], lo[..., 0], (n, k))
