"""BM25 against rank_bm25's BM25Okapi on the same tokens, and the tokenisers."""

from __future__ import annotations

import numpy as np
import pytest

from lmstack.retrieve.bm25 import BM25, tokenize

DOCS = [
    "The cat sat on the mat.",
    "Dogs and cats are friends; the dog chased the cat around the garden.",
    "Vector search finds the nearest embeddings to a query vector.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "The quick brown fox jumps over the lazy dog.",
    "A garden with a cat, a dog and a fox: the fox is quick.",
    "向量检索把文本变成向量，然后寻找最近的向量。",
    "倒排索引是关键词检索的基础。",
]
QUERIES = ["the cat", "quick fox fox", "document frequency ranking", "the the the",
           "向量检索", "检索的基础", "nothing matches here", "garden dog cat the"]


@pytest.fixture(scope="module")
def corpus():
    return [tokenize(d) for d in DOCS]


def test_tokenize_english_and_chinese():
    assert tokenize("The Cat's mat, 2024!") == ["the", "cat", "s", "mat", "2024"]
    assert tokenize("向量检索 BM25 好") == ["向量", "量检", "检索", "bm25", "好"]


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (1.2, 0.3), (2.0, 1.0)])
def test_scores_equal_rank_bm25(corpus, k1, b):
    from rank_bm25 import BM25Okapi

    ref = BM25Okapi(corpus, k1=k1, b=b)
    ours = BM25(corpus, k1=k1, b=b)
    # "the" is in more than half the documents: its idf is floored, so the floor is tested.
    assert ours.idf["the"] == pytest.approx(ref.idf["the"], abs=1e-12) and ours.idf["the"] > 0
    for q in QUERIES:
        np.testing.assert_allclose(ours.scores(tokenize(q)), ref.get_scores(tokenize(q)),
                                   rtol=0, atol=1e-9)


def test_search_ranks_and_drops_zero_scores(corpus):
    hits = BM25(corpus).search(tokenize("quick fox"), k=3)
    assert [d for d, _ in hits] == [5, 4] and hits[0][1] > hits[1][1] > 0
    assert BM25(corpus).search(tokenize("nothing matches here")) == []


def test_a_missing_idf_floor_breaks_parity(corpus):
    from rank_bm25 import BM25Okapi

    class NoFloor(BM25):  # the classic mistake: raw idf, negative for common terms
        def _idf(self, doc_freq):
            return {t: np.log(self.n_docs - df + 0.5) - np.log(df + 0.5)
                    for t, df in doc_freq.items()}

    q = tokenize("the cat")
    gap = np.abs(NoFloor(corpus).scores(q) - BM25Okapi(corpus).get_scores(q)).max()
    assert gap > 1e-3  # the parity test's 1e-9 would fail


def test_jieba_words_where_installed():
    pytest.importorskip("jieba")
    # Search-engine mode: the long word and its parts, so either form in a query matches.
    assert tokenize("我们在北京大学学习 BM25", chinese="jieba") == [
        "我们", "在", "北京", "大学", "北京大学", "学习", "bm25"]
    with pytest.raises(ValueError, match="'bigrams' or 'jieba'"):
        tokenize("向量", chinese="words")
