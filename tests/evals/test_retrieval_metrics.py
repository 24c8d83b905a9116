"""Retrieval and answer metrics against values worked out by hand on a tiny judged set, and
nDCG against scikit-learn's ndcg_score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from lmstack.evals.answers import exact_match, token_f1
from lmstack.evals.retrieval import mean_metrics, ndcg_at_k, recall_at_k, reciprocal_rank

RUN = {"q1": ["d3", "d1", "d7", "d2"], "q2": ["d5", "d6", "d4"], "q3": ["d9"]}
QRELS = {"q1": {"d1": 3, "d2": 1, "d8": 2}, "q2": {"d4": 1}, "q3": {"d9": 0}}


def test_hand_computed_values():
    assert recall_at_k(RUN["q1"], QRELS["q1"], 2) == pytest.approx(1 / 3)
    assert recall_at_k(RUN["q1"], QRELS["q1"], 4) == pytest.approx(2 / 3)
    assert reciprocal_rank(RUN["q1"], QRELS["q1"]) == 0.5
    assert reciprocal_rank(RUN["q2"], QRELS["q2"]) == pytest.approx(1 / 3)
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    assert ndcg_at_k(RUN["q1"], QRELS["q1"]) == pytest.approx(dcg / idcg)
    means = mean_metrics(RUN, QRELS, ks=(1, 3))
    assert means["queries"] == 2  # q3 has no relevant document: left out
    assert means["recall@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert means["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_ndcg_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        gains = rng.integers(0, 4, size=30).astype(float)
        scores = rng.permutation(30).astype(float)  # distinct: no ties to average
        ranked = list(np.argsort(-scores))
        ours = ndcg_at_k(ranked, dict(enumerate(gains)), 10)
        if gains.sum():
            assert ours == pytest.approx(ndcg_score([gains], [scores], k=10))
    # A deliberate break: a reversed ranking is not what scikit-learn scores.
    gains = np.array([3.0, 2, 1, 0])
    assert ndcg_at_k([3, 2, 1, 0], dict(enumerate(gains))) != pytest.approx(
        ndcg_score([gains], [[4.0, 3, 2, 1]]))


def test_answer_metrics():
    assert exact_match("The Len function.", "len function") == 1.0
    assert token_f1("returns the number of items", "the number of items") == pytest.approx(
        2 * (3 / 4) * 1 / (3 / 4 + 1))
    assert token_f1("踢爆了", "踢爆") == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert token_f1("nothing", "len") == 0.0
