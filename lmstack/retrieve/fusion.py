"""Reciprocal rank fusion: merge ranked lists (e.g. BM25 and dense) by summing 1 / (k + rank).

Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank
Learning Methods" (SIGIR 2009); k = 60 is the paper's constant.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = 60,
                           weights: Sequence[float] | None = None) -> list[tuple[Hashable, float]]:
    """(id, fused score) best first. Ranks start at 1; an id missing from a list gets nothing
    from it. Only ranks are used, so scores on different scales (BM25, cosine) need no
    calibration. Ties keep the order in which ids were first met."""
    if weights is not None and len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    fused: dict[Hashable, float] = {}
    for r, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[r]
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    # sorted() is stable and dicts keep insertion order: equal scores stay first-met first.
    return sorted(fused.items(), key=lambda pair: -pair[1])
