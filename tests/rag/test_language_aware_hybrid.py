"""Hybrid retrieval gives the dense list no vote on a query the embedder cannot read (its
declared scripts), and fuses both lists on one it can; the same lists fused blindly differ,
so the test sees the rule at work."""

from __future__ import annotations

import numpy as np

from lmstack.rag.retriever import BM25Retriever, DenseRetriever, HybridRetriever, Passage

# BM25 ranks the first three of each by how many query terms they hold: 3, 2, 1.
ENGLISH = ["green tea leaves", "tea leaves", "leaves", "coffee beans", "rice bowl"]
CHINESE = ["绿茶叶子", "茶叶子", "叶子", "咖啡豆", "米饭碗"]           # ids 5..9
TEXTS = ENGLISH + CHINESE


class OneHot:
    """Passage i embeds to the i-th unit vector; a query to the vector it is given, so the
    dense ranking is whatever the test wants it to be."""

    dim = len(TEXTS)

    def __init__(self, queries: dict[str, list[float]], scripts):
        self.queries, self.scripts = queries, scripts

    def encode(self, texts):
        rows = []
        for t in texts:
            v = np.array(self.queries[t]) if t in self.queries else np.eye(self.dim)[TEXTS.index(t)]
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32)


def hybrid(query: str, dense_order: list[int], scripts) -> tuple[list[int], list[int]]:
    """(BM25's order, hybrid's top 3) of passage ids, with the dense order given."""
    passages = [Passage(i, t, f"d{i}", 0, len(t)) for i, t in enumerate(TEXTS)]
    vector = np.zeros(len(TEXTS))
    vector[dense_order] = np.linspace(1.0, 0.5, len(dense_order))  # first listed = closest
    lexical = BM25Retriever(passages)
    dense = DenseRetriever(passages, OneHot({query: vector.tolist()}, scripts))
    fused = HybridRetriever(lexical, dense).search(query, 3)
    return [h.id for h in lexical.search(query, 3)], [h.id for h in fused]


def test_a_query_the_embedder_reads_is_fused():
    # BM25 a, b, c; dense c, a, b: RRF gives a (1/61 + 1/62), c (1/63 + 1/61), b.
    lexical, fused = hybrid("leaves of green tea", [2, 0, 1], scripts=("latin",))
    assert lexical == [0, 1, 2] and fused == [0, 2, 1]


def test_a_query_it_cannot_read_keeps_the_lexical_order():
    lexical, fused = hybrid("绿茶叶子呢", [7, 5, 6], scripts=("latin",))
    assert lexical == [5, 6, 7]
    assert fused == lexical
    # The deliberate break: the same lists fused without the check reorder.
    assert hybrid("绿茶叶子呢", [7, 5, 6], scripts=None)[1] == [5, 7, 6]
    # A model that declares Chinese gets its vote back.
    assert hybrid("绿茶叶子呢", [7, 5, 6], scripts=("latin", "cjk"))[1] == [5, 7, 6]


def test_below_the_lexical_hits_the_dense_list_fills_in():
    # Only 茶叶 and 茶叶子 share a term with "茶叶"; the dense list still adds its pick after.
    lexical, fused = hybrid("茶叶", [8, 6, 5], scripts=("latin",))
    assert len(lexical) == 2 and fused == [*lexical, 8]
