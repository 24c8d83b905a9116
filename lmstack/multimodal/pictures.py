"""Image tensors to pixels people can look at: uint8 arrays, a grid of samples, PNG bytes and
files (Pillow, written atomically)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from lmstack.fileio import atomic_write


def to_uint8(images: torch.Tensor | np.ndarray, scale: int = 1) -> np.ndarray:
    """[B, C, H, W] in [0, 1] -> [B, H*scale, W*scale, C] uint8 (nearest-neighbour enlarged:
    an 8x8 digit stays crisp at 256x256)."""
    x = np.asarray(images, np.float32).clip(0, 1)
    x = np.rint(x * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return x.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else x


def grid(images: torch.Tensor | np.ndarray, rows: int, scale: int = 1, pad: int = 1) -> np.ndarray:
    """[B, C, H, W] -> one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] uint8 picture, row-major."""
    tiles = to_uint8(images, scale)
    b, h, w, c = tiles.shape
    cols = -(-b // rows)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 64, np.uint8)
    for i, tile in enumerate(tiles):
        r, k = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h,
            pad + k * (w + pad): pad + k * (w + pad) + w] = tile
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    """[H, W, C] uint8 (C = 1 or 3) -> a PNG file's bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buf, format="PNG")
    return buf.getvalue()


def save_png(pixels: np.ndarray, path: str | Path) -> None:
    data = png_bytes(pixels)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
