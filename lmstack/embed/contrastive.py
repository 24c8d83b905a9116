"""Contrastive training of an embedding model: in-batch negatives over (query, passage) pairs.

Each query's positive is its own passage; the other passages of the batch are its negatives,
so a batch of B pairs gives B - 1 negatives per query for free. The loss is InfoNCE (van den
Oord et al., 2018) on cosine similarities divided by a temperature, the form of DPR (Karpukhin
et al., 2020) and sentence-transformers' MultipleNegativesRankingLoss (scale = 1/temperature,
the parity reference); `symmetric` also ranks queries for each passage and averages the two
directions (as CLIP does). SimCSE (Gao et al., 2021) is the special case query = passage = the
same sentence, the two views differing only by dropout.

`ContrastivePairs` feeds the Trainer, `Contrastive` is its objective: train any lmstack BERT
encoder with `Trainer(encoder, Contrastive(), ContrastivePairs(pairs, tokenizer), config)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.embed.embedder import pool
from lmstack.train.objectives import Terms


def info_nce(queries: Tensor, passages: Tensor, temperature: float = 0.05,
             symmetric: bool = False, groups: Tensor | None = None) -> Tensor:
    """Mean InfoNCE over a batch: queries [B, d] and passages [B, d], row i a positive pair.

    groups [B]: pairs sharing a passage (several questions on one paragraph) share a group id;
    another pair's copy of one's own positive is then masked out instead of counted as a
    negative (it would be a false negative).
    """
    q, p = F.normalize(queries.float(), dim=-1), F.normalize(passages.float(), dim=-1)
    logits = q @ p.T / temperature                       # [B, B]: the diagonal holds positives
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    targets = torch.arange(len(q), device=q.device)
    loss = F.cross_entropy(logits, targets)
    if symmetric:  # passages -> queries too: the transposed matrix, same targets
        loss = (loss + F.cross_entropy(logits.T, targets)) / 2
    return loss


class ContrastivePairs:
    """(query, passage) text pairs as the Trainer's data: `batch` tokenises both sides.

    Passages are grouped by their text, so equal passages in one batch are not negatives of
    each other (see info_nce's `groups`).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], tokenizer, max_length: int = 128):
        if not pairs:
            raise ValueError("ContrastivePairs needs at least one (query, passage) pair")
        self.pairs, self.tokenizer, self.max_length = list(pairs), tokenizer, max_length
        ids: dict[str, int] = {}
        self.groups = [ids.setdefault(p, len(ids)) for _, p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def _side(self, texts: list[str], prefix: str) -> dict[str, Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {f"{prefix}_input_ids": enc["input_ids"],
                f"{prefix}_attention_mask": enc["attention_mask"]}

    def batch(self, indices: Sequence[int], keys: Sequence[int] | None = None) -> dict[str, Tensor]:
        rows = [self.pairs[int(i)] for i in indices]
        return {**self._side([q for q, _ in rows], "q"), **self._side([p for _, p in rows], "p"),
                "groups": torch.tensor([self.groups[int(i)] for i in indices])}


class Contrastive:
    """The Trainer objective: encode both sides with the same encoder, pool, InfoNCE."""

    name = "contrastive"

    def __init__(self, temperature: float = 0.05, symmetric: bool = True, pooling: str = "mean"):
        self.temperature, self.symmetric, self.pooling = temperature, symmetric, pooling

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"contrastive": len(batch["q_input_ids"])}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return int(batch["q_attention_mask"].sum() + batch["p_attention_mask"].sum())

    def embed(self, model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
        hidden, _ = model(ids, mask, torch.zeros_like(ids))  # [B, T, H]
        return pool(hidden, mask, self.pooling)               # [B, H]

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        q = self.embed(model, batch["q_input_ids"], batch["q_attention_mask"])
        p = self.embed(model, batch["p_input_ids"], batch["p_attention_mask"])
        loss = info_nce(q, p, self.temperature, self.symmetric, batch.get("groups"))
        n = len(q)
        return {"contrastive": (loss * n, torch.tensor(n, device=loss.device))}
