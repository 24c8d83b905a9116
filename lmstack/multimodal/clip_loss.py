"""CLIP's symmetric InfoNCE loss, and the Trainer objective that trains a CLIPModel with it.

For a batch of B (image, caption) pairs the model scores every caption against every image:
logits [B, B] = scale * cos(text_i, image_j), the scale exp(logit_scale) being a learned
1 / temperature. Each caption should pick its own image out of the B (cross-entropy over a row)
and each image its own caption (over a column); the loss is the mean of the two directions
(Radford et al. 2021; van den Oord et al. 2018 for InfoNCE).

With few distinct captions ("a handwritten seven" for one tenth of the digits) a batch holds
several pairs that say the same thing. Counting those as negatives would teach the model that
a seven is not a seven, so pairs of one group are masked out of each other's softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.train.objectives import Terms


def clip_loss(logits_per_text: Tensor, groups: Tensor | None = None) -> Tensor:
    """Mean of text->image and image->text cross-entropy over [B, B] logits, diagonal positive.

    groups [B]: pairs with the same id say the same thing; off the diagonal they are masked
    (neither positive nor negative). Without groups this equals transformers' clip_loss.
    """
    logits = logits_per_text.float()
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class CLIPObjective:
    """The Trainer objective: one loss per batch (contrastive losses do not split into
    per-example sums, so the batch is the unit and gradient accumulation should stay at 1)."""

    name = "clip"

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"clip": len(batch["groups"])}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return len(batch["groups"])  # pairs: "tokens/s" reads as pairs/s here

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logits_per_text, _ = model(batch["input_ids"], batch["pixel_values"],
                                   batch["attention_mask"])
        n = len(logits_per_text)
        # The Trainer divides by the count: hand it the batch mean times the batch size.
        loss = clip_loss(logits_per_text, batch["groups"]) * n
        return {"clip": (loss, torch.tensor(n))}
