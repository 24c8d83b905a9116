"""The rule-based reader that rates generated shapes: it reads the generator's own pictures
back (colour, shape, corner), and hand-made pictures pass or fail as they should."""

from __future__ import annotations

import numpy as np

from lmstack.multimodal.shape_reader import read_shape
from lmstack.multimodal.shapes import COLOURS, Shape, make_shapes, render


def test_reads_back_what_the_generator_drew():
    images, shapes = make_shapes(600, split="all", seed=3)
    reads = [read_shape(im) for im in images]
    assert np.mean([r == s for r, s in zip(reads, shapes, strict=True)]) >= 0.99


def test_a_red_circle_passes_and_a_wrong_colour_fails():
    want = Shape("red", "circle", "top left")
    picture = render(want, rng=np.random.default_rng(7))
    assert read_shape(picture) == want
    green = picture.copy()
    green[:, picture.max(axis=0) > 0] = np.asarray(COLOURS["green"])[:, None]
    assert read_shape(green) == Shape("green", "circle", "top left") != want


def test_hand_drawn_square_and_triangle_and_an_empty_canvas():
    square = np.zeros((3, 16, 16), np.float32)
    square[2, 10:15, 9:14] = 1.0                                       # blue, bottom right
    assert read_shape(square) == Shape("blue", "square", "bottom right")
    triangle = np.zeros((3, 16, 16), np.float32)
    for row in range(5):                                              # widens downward
        triangle[:2, 2 + row, 4 - row:5 + row] = 1.0                  # yellow-ish (red+green)
    assert read_shape(triangle).shape == "triangle"
    assert read_shape(triangle).position == "top left"
    assert read_shape(np.full((3, 16, 16), 0.2, np.float32)) is None  # grey: nothing lit
