"""The retriever seam of RAG: `search(query, k) -> list[Hit]`, and three retrievers over a
fixed set of passages (BM25, dense, hybrid by reciprocal rank fusion).

A `Hit` carries what a citation needs: the chunk's text, the document it came from and the
character span in that document. Anything with a `search` method of this shape plugs into
the pipeline: the knowledge base, or a re-ranker wrapped around one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lmstack.retrieve.bm25 import BM25, tokenize
from lmstack.retrieve.fusion import reciprocal_rank_fusion
from lmstack.retrieve.index import ExactIndex, VectorIndex
from lmstack.retrieve.scripts import writing_system

# The "not in the documents" threshold on MiniLM cosine similarity (dense and hybrid scores),
# tuned by benchmarks/retrieval_quality.py over the Python reference: the lowest value with the
# best accuracy at keeping the 49 pydoc questions (median top cosine 0.65) and refusing 100
# Cranfield aerodynamics queries (median 0.12), which the reference cannot answer.
MIN_COSINE = 0.29


@dataclass(frozen=True)
class Passage:
    """A chunk to search: `text` is `document[start:end]` of the document named `source`."""

    id: int
    text: str
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """A retrieved passage and its score (higher is more relevant; the scale is the
    retriever's own: BM25 points, or cosine similarity for dense and hybrid)."""

    id: int
    text: str
    source: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source, "start": self.start,
                "end": self.end, "score": self.score}


@runtime_checkable
class Retriever(Protocol):
    def search(self, query: str, k: int = 5) -> list[Hit]: ...


def _hit(p: Passage, score: float) -> Hit:
    return Hit(p.id, p.text, p.source, p.start, p.end, float(score))


class BM25Retriever:
    """Okapi BM25 over the passages; Chinese runs become character bigrams (see bm25.tokenize).
    Passages sharing no term with the query are never returned."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.bm25 = BM25([tokenize(p.text) for p in self.passages])

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return [_hit(self.passages[i], s) for i, s in self.bm25.search(tokenize(query), k)]


class DenseRetriever:
    """Cosine similarity of unit-length sentence embeddings (an `Embedder`, e.g. MiniLM).

    `index` holds one vector per passage id; without one, the passages are embedded here into
    an exact index. all-MiniLM-L6-v2 was trained on English pairs: on Chinese it is weak.
    """

    def __init__(self, passages: Sequence[Passage], embedder, index: VectorIndex | None = None):
        self.by_id = {p.id: p for p in passages}
        self.embedder = embedder
        if index is None:
            index = ExactIndex(embedder.dim)
            if self.by_id:
                index.add(list(self.by_id), embedder.encode([p.text for p in passages]))
        self.index = index
        self._queries: dict[str, np.ndarray] = {}  # filled only by remember()

    def remember(self, queries: Sequence[str]) -> None:
        """Embed queries ahead in batches (an evaluation's whole query set): one forward pass
        per batch instead of one per search."""
        self._queries |= dict(zip(queries, self.embedder.encode(list(queries)), strict=True))

    def reads(self, text: str) -> bool:
        """Whether the embedder was trained on `text`'s writing system (unknown: assume so)."""
        scripts = getattr(self.embedder, "scripts", None)
        return scripts is None or writing_system(text) in scripts

    def query_vector(self, query: str) -> np.ndarray:
        vector = self._queries.get(query)
        return self.embedder.encode([query])[0] if vector is None else vector

    def search(self, query: str, k: int = 5) -> list[Hit]:
        if not len(self.index):
            return []
        vector = self.query_vector(query)
        return [_hit(self.by_id[h.id], h.score) for h in self.index.search(vector, k)]


class HybridRetriever:
    """BM25 and dense lists fused by reciprocal rank fusion (each `depth` deep).

    Language-aware: when the query is in a writing system the embedder was not trained on
    (`DenseRetriever.reads`), the dense list's weight is 0, so the order is BM25's and the
    dense list only fills in below it. Fusing with a model that cannot read the query is
    noise, not a second opinion: on CMRC 2018 (Chinese) with English MiniLM it cost nDCG@10
    0.98 -> 0.71. The rule uses what the embedder declares, never the evaluation's labels.

    The order is RRF's, but each hit's score is its dense cosine similarity: a fused score
    depends only on ranks, so it cannot say whether anything relevant was found at all, and
    the pipeline's "not in the documents" threshold needs a number with that meaning.
    """

    def __init__(self, lexical: BM25Retriever, dense: DenseRetriever, depth: int = 50,
                 weights: Sequence[float] = (1.0, 1.0)) -> None:
        self.lexical, self.dense, self.depth, self.weights = lexical, dense, depth, weights

    def search(self, query: str, k: int = 5) -> list[Hit]:
        lexical = self.lexical.search(query, self.depth)
        vector = self.dense.query_vector(query)
        dense = self.dense.index.search(vector, self.depth) if len(self.dense.index) else []
        weights = self.weights if self.dense.reads(query) else (self.weights[0], 0.0)
        fused = reciprocal_rank_fusion([[h.id for h in lexical], [h.id for h in dense]],
                                       weights=weights)[:k]
        cosine = {h.id: h.score for h in dense}
        missing = [i for i, _ in fused if i not in cosine]
        if missing:  # BM25 found it, the dense list did not reach it: score it directly
            texts = [self.dense.by_id[i].text for i in missing]
            cosine |= dict(zip(missing, self.dense.embedder.encode(texts) @ vector,
                               strict=True))
        return [_hit(self.dense.by_id[i], cosine[i]) for i, _ in fused]


def passages_of(documents: dict[str, str], chunker, **options) -> list[Passage]:
    """Every chunk of every document (source -> text) as a Passage, ids from 0 in order."""
    out: list[Passage] = []
    for source, text in documents.items():
        out += [Passage(len(out) + j, c.text, source, c.start, c.end)
                for j, c in enumerate(chunker(text, **options))]
    return out


def documents_ranked(hits: Sequence[Hit]) -> list[str]:
    """The documents of `hits` in the order their best chunk appears (first occurrence)."""
    return list(dict.fromkeys(h.source for h in hits))

