"""MMR against its definition computed by hand, and on the case it exists for: near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from lmstack.retrieve.mmr import mmr


def by_definition(q, c, k, lam):
    """Carbonell & Goldstein's formula, one candidate and one picked item at a time."""
    picked = []
    while len(picked) < min(k, len(c)):
        def gain(i):
            redundancy = max((float(c[i] @ c[j]) for j in picked), default=0.0)
            return lam * float(c[i] @ q) - (1 - lam) * redundancy
        picked.append(max((i for i in range(len(c)) if i not in picked), key=gain))
    return picked


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_near_duplicates_give_way_to_a_different_result():
    q = unit([1.0, 0.3, 0.0])
    a = unit([1.0, 0.1, 0.0])
    dupes = unit([a + [0, 0, 0.01], a + [0, 0.005, 0], a])         # three copies of one passage
    other = unit([0.6, 0.8, 0.0])                                  # relevant, but different
    c = np.vstack([dupes, other[None]])
    assert 3 not in np.argsort(-(c @ q))[:3]                       # plain top-3: the copies
    assert mmr(q, c, 2, lambda_=0.5)[1] == 3                       # the other one comes second
    assert mmr(q, c, 3, lambda_=1.0) == np.argsort(-(c @ q))[:3].tolist()  # lambda 1 = top-k


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_matches_the_formula(lam):
    rng = np.random.default_rng(int(lam * 10))
    q, c = unit(rng.standard_normal(8)), unit(rng.standard_normal((30, 8)))
    assert mmr(q, c, 10, lam) == by_definition(q, c, 10, lam)


def test_without_the_redundancy_term_the_duplicate_returns():
    # lambda 1 drops the redundancy term: what a forgotten penalty would give, caught here.
    q = unit([1.0, 0.3, 0.0])
    c = np.vstack([unit([[1.0, 0.1, 0.0], [1.0, 0.1, 0.01]]), unit([0.6, 0.8, 0.0])[None]])
    assert by_definition(q, c, 2, 0.5) == mmr(q, c, 2, 0.5) == [0, 2]
    assert mmr(q, c, 2, 1.0) == [0, 1]


def test_edges():
    assert mmr(np.ones(2), np.zeros((0, 2)), 3) == []
    assert sorted(mmr(unit([1.0, 0.0]), unit(np.eye(2)), 5)) == [0, 1]
    with pytest.raises(ValueError, match="lambda_"):
        mmr(np.ones(2), np.ones((1, 2)), 1, lambda_=1.5)
