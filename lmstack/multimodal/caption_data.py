"""(image, prompt, answer) examples for the captioner, as the Trainer's data and objective.

A caption is the answer to the prompt "describe the image" / "描述这张图片"; a visual question
("what colour is the shape?") has a one-phrase answer. The text is "[CLS] prompt [SEP] answer
[SEP]" and only the answer's tokens (and its closing [SEP]) are predicted; the prompt is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.data.mlm import IGNORE_INDEX
from lmstack.multimodal.caption_vocab import DESCRIBE
from lmstack.multimodal.shapes import Shape, digit_caption
from lmstack.train.objectives import Terms

Example = tuple[int, str, str]  # (image index, prompt, answer)


def shape_examples(shapes: Sequence[Shape]) -> list[Example]:
    """Per image and language: its caption and its three questions."""
    out = []
    for i, s in enumerate(shapes):
        for lang in ("en", "zh"):
            out += [(i, DESCRIBE[lang], s.caption(lang)), *((i, q, a) for q, a in s.questions(lang))]
    return out


def digit_examples(labels: Sequence[int]) -> list[Example]:
    return [(i, DESCRIBE[lang], digit_caption(int(d), lang))
            for i, d in enumerate(labels) for lang in ("en", "zh")]


def encode_example(tokenizer, prompt: str, answer: str) -> tuple[list[int], int]:
    """(ids of "[CLS] prompt [SEP] answer [SEP]", length of the prompt part)."""
    p = tokenizer(prompt)["input_ids"]
    return p + tokenizer(answer)["input_ids"][1:], len(p)


class PromptAnswers:
    """Examples over precomputed image features [N_images, tokens, dim] (the CLIP tower is
    frozen, so each image is encoded once, not once per step)."""

    def __init__(self, features: Tensor, examples: Sequence[Example], tokenizer):
        self.features, self.examples = features, list(examples)
        self.encoded = [encode_example(tokenizer, p, a) for _, p, a in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, indices, keys=None) -> dict[str, Tensor]:
        rows = [self.encoded[int(i)] for i in indices]
        width = max(len(ids) for ids, _ in rows) - 1
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, (ids, n_prompt) in enumerate(rows):
            seq = torch.tensor(ids)
            input_ids[r, :len(ids) - 1], mask[r, :len(ids) - 1] = seq[:-1], 1
            labels[r, n_prompt - 1:len(ids) - 1] = seq[n_prompt:]   # the answer, shifted
        images = np.asarray([self.examples[int(i)][0] for i in indices])
        return {"image_features": self.features[torch.from_numpy(images)],
                "input_ids": input_ids, "attention_mask": mask, "labels": labels}


class PrefixLM:
    """The Trainer objective: summed cross-entropy over the answer tokens."""

    name = "prefix_lm"

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"lm": int((batch["labels"] != IGNORE_INDEX).sum())}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return int(batch["attention_mask"].sum())

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logits = model(batch["image_features"], batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                               ignore_index=IGNORE_INDEX, reduction="sum")
        return {"lm": (loss, (labels != IGNORE_INDEX).sum())}
