"""Second-stage retrievers: take a first-stage retriever's `fetch_k` best hits and re-order
them, by maximal marginal relevance (diversity) or by a re-ranker (relevance read jointly).

Both are Retrievers themselves, so they stack on BM25, dense, hybrid or a knowledge base and
plug into the pipeline and the evaluation unchanged. Hits below `fetch_k` keep the first
stage's order, so a deep evaluation (100 hits) still sees the whole ranking.
"""

from __future__ import annotations

from lmstack.rag.retriever import DenseRetriever, Hit, Retriever
from lmstack.retrieve.mmr import mmr
from lmstack.retrieve.rerank import Reranker, reorder


class MMRRetriever:
    """The first stage's top `fetch_k`, re-ordered by MMR on the dense retriever's vectors
    (lambda_ 1 = unchanged, 0 = only spread out). A query the embedder cannot read
    (`DenseRetriever.reads`) keeps the first stage's order: its similarities would be noise."""

    def __init__(self, base: Retriever, dense: DenseRetriever, lambda_: float = 0.5,
                 fetch_k: int = 20) -> None:
        self.base, self.dense, self.lambda_, self.fetch_k = base, dense, lambda_, fetch_k

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits = self.base.search(query, max(k, self.fetch_k))
        head, tail = hits[:self.fetch_k], hits[self.fetch_k:]
        if len(head) < 2 or not self.dense.reads(query):
            return hits[:k]
        vectors = self.dense.embedder.encode([h.text for h in head])  # [fetch_k, dim]
        order = mmr(self.dense.query_vector(query), vectors, len(head), self.lambda_)
        return ([head[i] for i in order] + tail)[:k]


class RerankedRetriever:
    """The first stage's top `fetch_k`, re-ordered by `reranker` (e.g. YesNoReranker on
    SmolLM2). Each hit keeps its first-stage score: the pipeline's "not in the documents"
    threshold is on that scale, not on the re-ranker's."""

    def __init__(self, base: Retriever, reranker: Reranker, fetch_k: int = 20) -> None:
        self.base, self.reranker, self.fetch_k = base, reranker, fetch_k

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits = self.base.search(query, max(k, self.fetch_k))
        head, tail = hits[:self.fetch_k], hits[self.fetch_k:]
        order = reorder(self.reranker, query, [h.text for h in head]) if head else []
        return ([head[i] for i in order] + tail)[:k]
