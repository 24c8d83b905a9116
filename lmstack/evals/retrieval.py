"""Ranking metrics for retrieval: recall@k, reciprocal rank, nDCG@k, and their means.

Definitions as in trec_eval and Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR
techniques" (2002): linear gains, log2(rank + 1) discount, the ideal ordering of all judged
gains as the normaliser (scikit-learn's `ndcg_score` computes the same; the tests compare).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

Qrels = Mapping[Hashable, float]  # document id -> graded relevance (> 0 means relevant)


def recall_at_k(ranked: Sequence[Hashable], qrels: Qrels, k: int) -> float:
    """Share of the relevant documents found in the first k."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[Hashable], qrels: Qrels) -> float:
    """1 / rank of the first relevant document; 0 when none was retrieved."""
    for rank, doc in enumerate(ranked, start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], qrels: Qrels, k: int = 10) -> float:
    """DCG of the first k over the DCG of the best possible first k."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(r + 1)
              for r, d in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def mean_metrics(runs: Mapping[Hashable, Sequence[Hashable]],
                 qrels: Mapping[Hashable, Qrels], ks: Sequence[int] = (1, 5, 10)
                 ) -> dict[str, float]:
    """recall@k for each k, MRR and nDCG@10, averaged over the queries that have judgments
    (a query without any relevant document cannot score and is left out, as trec_eval does)."""
    judged = [q for q in runs if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        raise ValueError("no query in the run has a relevant document in the judgments")
    out = {f"recall@{k}": sum(recall_at_k(runs[q], qrels[q], k) for q in judged) / len(judged)
           for k in ks}
    out["mrr"] = sum(reciprocal_rank(runs[q], qrels[q]) for q in judged) / len(judged)
    out["ndcg@10"] = sum(ndcg_at_k(runs[q], qrels[q], 10) for q in judged) / len(judged)
    out["queries"] = len(judged)
    return out
