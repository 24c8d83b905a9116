"""Maximal marginal relevance: pick results that are relevant *and* unlike those already picked.

Carbonell & Goldstein, "The Use of MMR, Diversity-Based Reranking for Reordering Documents and
Producing Summaries" (SIGIR 1998). Greedy: each step takes the candidate d maximising

    lambda * sim(query, d)  -  (1 - lambda) * max over picked s of sim(d, s)

so lambda = 1 is plain top-k by relevance and lambda = 0 only spreads out. Five copies of the
same paragraph then cost a RAG prompt one slot, not five.
"""

from __future__ import annotations

import numpy as np


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lambda_: float = 0.5) -> list[int]:
    """Rows of `candidates` [n, dim] in MMR order (k of them at most). Similarity is the inner
    product: cosine on unit vectors, as the Embedder makes them."""
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    candidates = np.asarray(candidates, dtype=np.float32)
    relevance = candidates @ np.asarray(query, dtype=np.float32)  # [n]
    pairwise = candidates @ candidates.T                          # [n, n]
    picked: list[int] = []
    # redundancy[i] = max similarity of candidate i to anything picked so far (0 before any).
    redundancy = np.zeros(len(candidates), dtype=np.float32)
    free = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        score = lambda_ * relevance - (1 - lambda_) * redundancy
        best = int(np.argmax(np.where(free, score, -np.inf)))
        picked.append(best)
        free[best] = False
        redundancy = pairwise[best] if len(picked) == 1 else np.maximum(redundancy,
                                                                          pairwise[best])
    return picked
