"""Okapi BM25 lexical ranking over an inverted index, with English and Chinese tokenisation.

Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009); the idf
and its floor follow `rank_bm25.BM25Okapi`, the parity reference in the tests.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from lmstack.retrieve.scripts import CJK

_TOKEN = re.compile(rf"[{CJK}]+|[^\W_{CJK}]+")
_IS_CJK = re.compile(rf"[{CJK}]")


def tokenize(text: str, chinese: str = "bigrams") -> list[str]:
    """Lower-cased word tokens. A run of Chinese characters becomes its overlapping character
    bigrams (a one-character run stays a unigram), which needs no word dictionary; or, with
    chinese="jieba", the words of jieba's search-engine mode (the jieba package, optional)."""
    if chinese not in ("bigrams", "jieba"):
        raise ValueError(f"chinese must be 'bigrams' or 'jieba', not {chinese!r}")
    cut = _jieba_words() if chinese == "jieba" else None
    tokens: list[str] = []
    for run in _TOKEN.findall(text.lower()):
        if not _IS_CJK.match(run):
            tokens.append(run)
        elif cut is not None:
            tokens += [w for w in cut(run) if w.strip()]
        else:
            tokens += [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
    return tokens


def _jieba_words():
    try:
        import jieba
    except ImportError:
        raise ImportError("chinese='jieba' needs the jieba package: pip install jieba "
                          "(or keep the default character bigrams)") from None
    import logging

    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter on every first use
    return jieba.cut_for_search


class BM25:
    """Score a tokenised query against every document of a fixed tokenised corpus.

    k1 saturates repeated terms, b scales how much document length normalises; epsilon floors
    the idf of terms found in more than half the documents (their raw idf is negative) at
    epsilon times the mean idf, as rank_bm25 does.
    """

    def __init__(self, corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75,
                 epsilon: float = 0.25) -> None:
        if not corpus:
            raise ValueError("BM25 needs at least one document")
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.doc_len = np.array([len(doc) for doc in corpus], dtype=np.float64)
        self.n_docs = len(corpus)
        self.avgdl = float(self.doc_len.sum()) / self.n_docs
        # term -> (document indices, term frequencies): only documents holding the term are
        # touched at query time, instead of a pass over the whole corpus per query term.
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for d, doc in enumerate(corpus):
            for term, tf in Counter(doc).items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(d)
                tfs.append(tf)
        self.postings = {t: (np.array(d), np.array(f, dtype=np.float64))
                         for t, (d, f) in postings.items()}
        self.idf = self._idf({t: len(d) for t, (d, _) in self.postings.items()})
        # The length part of the denominator depends only on the document: compute it once.
        self._norm = k1 * (1 - b + b * self.doc_len / self.avgdl) if self.avgdl else \
            np.full(self.n_docs, k1 * (1 - b))

    def _idf(self, doc_freq: dict[str, int]) -> dict[str, float]:
        n = self.n_docs
        idf = {t: math.log(n - df + 0.5) - math.log(df + 0.5) for t, df in doc_freq.items()}
        if not idf:
            return idf
        floor = self.epsilon * sum(idf.values()) / len(idf)
        return {t: (floor if v < 0 else v) for t, v in idf.items()}

    def scores(self, query: Iterable[str]) -> np.ndarray:
        """BM25 of every document; a term repeated in the query counts each time."""
        out = np.zeros(self.n_docs)
        for term in query:
            if term not in self.postings:
                continue
            docs, tf = self.postings[term]
            out[docs] += self.idf[term] * tf * (self.k1 + 1) / (tf + self._norm[docs])
        return out

    def search(self, query: Iterable[str], k: int = 10) -> list[tuple[int, float]]:
        """The k best (document index, score) pairs with a positive score, best first."""
        s = self.scores(query)
        hits = np.flatnonzero(s > 0)
        # stable sort on -score: ties keep corpus order, so results are reproducible.
        best = hits[np.argsort(-s[hits], kind="stable")[:k]]
        return [(int(i), float(s[i])) for i in best]
