"""Zero-shot classification and recall@k between image and text embeddings.

Many images share one caption here (every seven is "a handwritten seven"), so a match is
judged by *group* (what the caption says), not by pair index: image->text at k succeeds when
one of the image's k nearest captions says what the image shows; text->image at k when one of
the caption's k nearest images shows what it says. Zero-shot classification is image->text at
k = 1 with one caption per class as the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def recall_at_k(queries: Tensor, query_groups: Sequence[int], keys: Tensor,
                key_groups: Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Share of queries [Q, D] with a same-group key among their k most similar keys [K, D]
    (unit vectors, so similarity is the dot product)."""
    qg, kg = torch.tensor(list(query_groups)), torch.tensor(list(key_groups))
    order = (queries @ keys.T).argsort(dim=1, descending=True)        # [Q, K]
    hits = kg[order] == qg[:, None]                                    # [Q, K] bool
    return {k: float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def zero_shot(images: Tensor, labels: Sequence[int], class_texts: Tensor) -> tuple[float, Tensor]:
    """(accuracy, predicted class per image): the class whose caption is nearest."""
    pred = (images @ class_texts.T).argmax(dim=1)
    return float((pred == torch.tensor(list(labels))).float().mean()), pred
