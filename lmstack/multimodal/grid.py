"""Small images as one PNG: a grid of [C, H, W] pictures in [0, 1], scaled up with nearest-
neighbour pixels so 8x8 digits stay legible in a report, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmstack.fileio import atomic_write


def image_grid(images: np.ndarray, cols: int, scale: int = 4, gap: int = 2) -> np.ndarray:
    """images [N, C, H, W] (C is 1 or 3) -> uint8 [rows*(H*scale+gap), cols*(...), 3]."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    n, _, h, w = images.shape
    rows = -(-n // cols)
    cell_h, cell_w = h * scale + gap, w * scale + gap
    canvas = np.full((rows * cell_h + gap, cols * cell_w + gap, 3), 128, np.uint8)  # grey lines
    for i, img in enumerate(images):
        big = np.clip(img.transpose(1, 2, 0), 0, 1).repeat(scale, 0).repeat(scale, 1)
        r, c = divmod(i, cols)
        canvas[gap + r * cell_h: gap + r * cell_h + h * scale,
               gap + c * cell_w: gap + c * cell_w + w * scale] = (big * 255).round()
    return canvas


def save_grid(images: np.ndarray, path: str | Path, cols: int, scale: int = 4) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image_grid(images, cols, scale))
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
    return path
