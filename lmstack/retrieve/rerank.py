"""Re-ranking: score (query, passage) pairs jointly, after a fast retriever found candidates.

A bi-encoder (the Embedder) embeds query and passage apart, so it cannot see how they interact;
a re-ranker reads both together and is slower, so it only orders the retriever's top few dozen
(Nogueira & Cho, "Passage Re-ranking with BERT", 2019).

`Reranker` is the interface: `rerank(query, candidates) -> scores`, higher is more relevant.
`YesNoReranker` is one implementation with any causal chat model (SmolLM2 here): ask whether the
passage answers the question and read the next-token distribution, the pointwise LLM ranking of
Nogueira et al., "Document Ranking with a Pretrained Sequence-to-Sequence Model" (2020).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

PROMPT = ("Passage: {passage}\n\nQuestion: {query}\n\n"
          "Does the passage answer the question? Reply with Yes or No.")


class Reranker(Protocol):
    def rerank(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        """One relevance score per candidate, higher is better (float64 [len(candidates)])."""


def reorder(reranker: Reranker, query: str, candidates: Sequence[str]) -> list[int]:
    """Candidate positions best first (ties keep the retriever's order)."""
    scores = reranker.rerank(query, candidates)
    return np.argsort(-scores, kind="stable").tolist()


class YesNoReranker:
    """score = log P(Yes) - log P(No) for the model's first reply token, i.e. the log-odds of
    "Yes" between the two answers (other tokens' probability mass does not blur it).

    Prompts are left-padded into batches, with positions counted from each prompt's first real
    token, so a batch scores as each prompt alone; only the last position's logits are made.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, max_passage_chars: int = 2000,
                 prompt: str = PROMPT) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_passage_chars, self.prompt = batch_size, max_passage_chars, prompt
        self.yes, self.no = (self._one_token(w) for w in ("Yes", "No"))
        pad = tokenizer.pad_token_id
        self.pad = pad if pad is not None else tokenizer.eos_token_id or 0

    def _one_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{word!r} is {len(ids)} tokens in this vocabulary; the yes/no "
                             "re-ranker needs it to be one")
        return ids[0]

    def prompt_ids(self, query: str, passage: str) -> list[int]:
        text = self.prompt.format(query=query, passage=passage[:self.max_passage_chars])
        return self.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                  add_generation_prompt=True, tokenize=True)

    @torch.inference_mode()
    def rerank(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        prompts = [self.prompt_ids(query, c) for c in candidates]
        scores = np.zeros(len(prompts))
        device = next(self.model.parameters()).device
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start:start + self.batch_size]
            width = max(map(len, batch))
            ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in batch], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch],
                                device=device)                       # [B, T], 0 = left pad
            positions = (mask.cumsum(1) - 1).clamp(min=0)           # 0 at each first real token
            logits = self.model(ids, mask, positions, logits_to_keep=1)[:, -1].float()  # [B, V]
            # log P(Yes) - log P(No): the softmax's normaliser cancels, so logits suffice.
            scores[start:start + len(batch)] = (logits[:, self.yes] - logits[:, self.no]).cpu()
        return scores
