"""The pretraining verdict follows the numbers: undertrained near the unigram entropy, healthy
well below it, and the unigram entropy itself checked against a hand-computed value."""

from __future__ import annotations

import math

import pytest

from lmstack.demo.verdict import judge_pretraining, unigram_entropy


def test_unigram_entropy_of_a_known_distribution():
    # Tokens 0,0,1,2: p = 1/2, 1/4, 1/4 -> H = 1.5 bits.
    assert unigram_entropy([0, 0, 1, 2]) == pytest.approx(1.5 * math.log(2))


@pytest.mark.parametrize(("val_loss", "words"), [
    (6.4, "**Undertrained.**"), (5.5, "**Partly trained.**"), (4.0, "**Trained well")])
def test_verdict_follows_the_loss(val_loss, words):
    text = judge_pretraining(val_loss, 6.3, ["a sentence of words here"] * 3, 100_000, 1000, 3)
    assert words in text and "A healthy result here" in text
    assert ("--minutes 10" in text) == (val_loss > 6.3 - 1.5)  # more time offered when short


def test_verdict_counts_empty_samples():
    text = judge_pretraining(6.4, 6.3, ["", "  ", "words words words"], 1000, 100, 3)
    assert "2 of 3 samples below are empty" in text
