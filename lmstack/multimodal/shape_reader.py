"""Read back what a 16x16 shapes picture shows, by rule, from its pixels: colour, shape and
corner. It rates a caption-conditioned diffusion model ("a red circle at the top left": is it
red, round and top left?) the way the LeNet rates digits, with no model to train.

Rules, from how lmstack/multimodal/shapes.py draws: the lit pixels (any channel > 0.5) are the
shape; their mean colour's nearest palette colour is the colour; their centre's quadrant is
the corner; an upward triangle has far fewer lit pixels in the top half of its bounding box
than in the bottom half, and of the rest a square fills its box, a circle about pi/4 of it.
"""

from __future__ import annotations

import numpy as np

from lmstack.multimodal.shapes import COLOURS, Shape

SQUARE_FILL = 0.95     # at or above: a square (a drawn one fills 1.0, a circle ~0.8)
TAPER = 0.62           # top-half / bottom-half lit pixels below this: a triangle (<= 0.6;
                       # a circle >= 0.65)


def read_shape(image: np.ndarray) -> Shape | None:
    """The Shape a [3, S, S] picture in [0, 1] shows, or None when nothing is lit."""
    lit = image.max(axis=0) > 0.5                                     # [S, S]
    if lit.sum() < 2:
        return None
    mean = image[:, lit].mean(axis=1)                                 # [3]
    colour = min(COLOURS, key=lambda c: float(np.square(mean - np.asarray(COLOURS[c])).sum()))
    ys, xs = np.nonzero(lit)
    half = image.shape[-1] / 2
    corner = f"{'top' if ys.mean() + 0.5 < half else 'bottom'} " \
             f"{'left' if xs.mean() + 0.5 < half else 'right'}"
    box = lit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    rows = box.sum(axis=1)                                            # lit pixels per row
    k = len(rows) // 2
    taper = rows[:k].sum() / max(rows[len(rows) - k:].sum(), 1)
    if taper < TAPER:
        shape = "triangle"
    elif box.mean() >= SQUARE_FILL:
        shape = "square"
    else:
        shape = "circle"
    return Shape(colour, shape, corner)
