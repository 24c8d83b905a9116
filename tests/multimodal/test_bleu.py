"""BLEU equals a hand computation; identical text scores 1, a shorter one pays the brevity
penalty."""

from __future__ import annotations

import math

from lmstack.multimodal.bleu import corpus_bleu


def test_hand_computed_corpus_bleu():
    hyp = [["a", "red", "circle", "at", "the", "top", "left"], ["a", "blue", "square", "at", "the", "left"]]
    ref = [["a", "red", "circle", "at", "the", "top", "left"], ["a", "blue", "square", "at", "the", "top", "left"]]
    # Sentence 2 (6 tokens) matches 6/6 unigrams, 4/5 bigrams, 3/4 trigrams, 2/3 fourgrams;
    # sentence 1 matches all: 7/7, 6/6, 5/5, 4/4. Corpus sums: 13/13, 10/11, 8/9, 6/7.
    expected = math.exp(1 - 14 / 13) * math.exp(
        (math.log(13 / 13) + math.log(10 / 11) + math.log(8 / 9) + math.log(6 / 7)) / 4)
    assert abs(corpus_bleu(hyp, ref) - expected) < 1e-12
    assert corpus_bleu(ref, ref) == 1.0
    assert corpus_bleu([["a"]], [["b"]]) == 0.0
