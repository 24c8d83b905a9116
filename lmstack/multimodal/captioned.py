"""Captioned images for training: digits and shapes, each image paired with a caption in
English or Chinese, as the Trainer's data (`len` and `batch(indices, keys)`).

Every pair also carries a *group*: the id of what the caption says (the digit; the colour,
shape and place). Two pairs of one group in a batch are both right answers for each other's
image, so the contrastive loss must not push them apart (see clip_loss's `groups`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lmstack.multimodal.shapes import ALL_SHAPES, Shape, digit_caption, make_shapes


class CaptionedImages:
    def __init__(self, images: np.ndarray, captions: Sequence[str], groups: Sequence[int],
                 tokenizer, max_length: int = 32):
        if not len(images) == len(captions) == len(groups):
            raise ValueError(f"{len(images)} images, {len(captions)} captions and "
                             f"{len(groups)} groups: there must be one of each per pair")
        self.images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        self.captions, self.groups = list(captions), torch.tensor(list(groups))
        self.tokenizer, self.max_length = tokenizer, max_length

    def __len__(self) -> int:
        return len(self.captions)

    def batch(self, indices, keys=None) -> dict[str, Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        enc = self.tokenizer([self.captions[int(i)] for i in idx], padding=True,
                             truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"pixel_values": self.images[idx], "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"], "groups": self.groups[idx]}


def bilingual(labels: Sequence, caption, seed: int) -> tuple[list[str], list[str]]:
    """A caption per item in English or Chinese, half each at random; returns (captions, langs)."""
    langs = np.random.default_rng(seed).choice(["en", "zh"], len(labels)).tolist()
    return [caption(x, lang) for x, lang in zip(labels, langs)], langs


def shape_id(s: Shape) -> int:
    return ALL_SHAPES.index(s)


def shape_pairs(n: int, split: str, seed: int, size: int = 16):
    """(images [n, 3, size, size], captions, groups, shapes) with mixed EN/ZH captions."""
    images, shapes = make_shapes(n, size, seed, split)
    captions, _ = bilingual(shapes, lambda s, lang: s.caption(lang), seed + 1)
    return images, captions, [shape_id(s) for s in shapes], shapes


def digit_pairs(images: np.ndarray, labels: np.ndarray, seed: int):
    """(images, captions, groups) for digit images: "a handwritten seven" / "手写的数字七"."""
    captions, _ = bilingual(labels.tolist(), digit_caption, seed)
    return images, captions, labels.tolist()
