"""MMR and re-ranking as retrievers stacked on a first stage: they re-order only the top
`fetch_k`, keep the rest in the first stage's order, and keep the first stage's scores."""

from __future__ import annotations

import numpy as np
from rag_helpers import bm25

from lmstack.rag.retriever import DenseRetriever, Hit, Passage
from lmstack.rag.second_stage import MMRRetriever, RerankedRetriever


class Fixed:
    """A first stage returning the same ranked hits for any query."""

    def __init__(self, texts: list[str]) -> None:
        self.hits = [Hit(i, t, f"d{i}", 0, len(t), 1.0 - i / 10) for i, t in enumerate(texts)]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return self.hits[:k]


class ByLength:
    """Scores a passage by its length: the re-ranker's verdict is easy to predict."""

    def rerank(self, query, candidates):
        return np.array([len(c) for c in candidates], dtype=np.float64)


def test_reranking_reorders_the_head_and_keeps_the_tail():
    base = Fixed(["aa", "a", "aaaa", "aaa", "aaaaaaa"])
    top = RerankedRetriever(base, ByLength(), fetch_k=4).search("q", 5)
    assert [h.id for h in top] == [2, 3, 0, 1, 4]  # 4 is longest but below fetch_k
    assert [h.score for h in top] == [base.hits[i].score for i in (2, 3, 0, 1, 4)]
    assert [h.id for h in RerankedRetriever(base, ByLength(), fetch_k=4).search("q", 2)] == [2, 3]


def test_reranking_a_real_retriever_keeps_its_hits():
    first = bm25()
    query = "What does the len() function return?"
    hits = first.search(query, 3)
    reranked = RerankedRetriever(first, ByLength()).search(query, 3)
    assert sorted(h.id for h in reranked) == sorted(h.id for h in hits)
    assert [len(h.text) for h in reranked] == sorted((len(h.text) for h in hits), reverse=True)


class Vectors:
    """Embeds the listed texts to given vectors; `scripts` as an Embedder declares them."""

    def __init__(self, table: dict[str, list[float]], scripts=("latin",)) -> None:
        self.table, self.scripts, self.dim = table, scripts, 2

    def encode(self, texts):
        rows = np.array([self.table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def mmr_setup(query: str, scripts=("latin",)):
    # Two copies of one passage and a different one: plain relevance takes both copies.
    texts = {"copy one": [1.0, 0.05], "copy two": [1.0, 0.06], "other": [0.6, 0.8],
             query: [1.0, 0.3]}
    passages = [Passage(i, t, f"d{i}", 0, len(t)) for i, t in enumerate(list(texts)[:3])]
    dense = DenseRetriever(passages, Vectors(texts, scripts))
    return dense, MMRRetriever(dense, dense, lambda_=0.5)


def test_mmr_spreads_out_a_readable_query():
    dense, diverse = mmr_setup("a question")
    assert [h.text for h in dense.search("a question", 2)] == ["copy two", "copy one"]
    assert [h.text for h in diverse.search("a question", 2)] == ["copy two", "other"]


def test_mmr_leaves_a_query_the_embedder_cannot_read_alone():
    dense, diverse = mmr_setup("一个问题")
    assert diverse.search("一个问题", 3) == dense.search("一个问题", 3)
    dense, diverse = mmr_setup("一个问题", scripts=None)  # a model that reads it: MMR acts
    assert [h.text for h in diverse.search("一个问题", 2)] == ["copy two", "other"]
