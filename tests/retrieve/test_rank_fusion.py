"""Reciprocal rank fusion against scores worked out by hand."""

from __future__ import annotations

import pytest

from lmstack.retrieve.fusion import reciprocal_rank_fusion


def test_hand_computed_scores():
    bm25 = ["a", "b", "c"]
    dense = ["c", "a", "d"]
    fused = dict(reciprocal_rank_fusion([bm25, dense]))
    # a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62; d: 1/63
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62, abs=1e-15)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61, abs=1e-15)
    assert fused["b"] == pytest.approx(1 / 62, abs=1e-15)
    assert fused["d"] == pytest.approx(1 / 63, abs=1e-15)
    assert [i for i, _ in reciprocal_rank_fusion([bm25, dense])] == ["a", "c", "b", "d"]


def test_weights_and_k():
    fused = dict(reciprocal_rank_fusion([["x"], ["y", "x"]], k=1, weights=[2.0, 1.0]))
    assert fused == pytest.approx({"x": 2 / 2 + 1 / 3, "y": 1 / 2}, abs=1e-15)
    with pytest.raises(ValueError, match="weight"):
        reciprocal_rank_fusion([["x"]], weights=[1.0, 2.0])


def test_ranks_start_at_one():
    # The slip of counting ranks from 0 gives the top item 1/60: a different number.
    (top, score), = reciprocal_rank_fusion([["only"]])
    assert top == "only" and score == pytest.approx(1 / 61) and score != pytest.approx(1 / 60)


def test_ties_keep_first_met_order():
    assert [i for i, _ in reciprocal_rank_fusion([["p", "q"], ["q", "p"]])] == ["p", "q"]
