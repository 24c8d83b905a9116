"""RAG evaluation: rank documents with a retriever over chunked text and score the ranking
(recall@k, MRR, nDCG@10); answer questions through the pipeline and score the answers (exact
match, token F1) and their citations (does a cited chunk hold the gold answer?).

A document's rank is the rank of its best chunk (as BEIR-style passage-to-document evaluation
does with max-passage scoring), so chunkers of any size are compared on the same judgments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from lmstack.evals.answers import contains_answer, exact_match, token_f1
from lmstack.evals.retrieval import mean_metrics
from lmstack.rag.chunking import fixed_chunks, recursive_chunks
from lmstack.rag.eval_sets import JudgedSet
from lmstack.rag.pipeline import RagPipeline
from lmstack.rag.retriever import (
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    Retriever,
    documents_ranked,
    passages_of,
)

CHUNKERS: dict[str, Callable] = {"fixed": fixed_chunks, "recursive": recursive_chunks}
RETRIEVERS = ("bm25", "dense", "hybrid")
PYDOC_QA = Path(__file__).parent / "data" / "pydoc_qa.json"


def build_retrievers(documents: dict[str, str], kinds: Sequence[str] = RETRIEVERS,
                     chunker: str = "recursive", size: int = 512, overlap: int = 64,
                     embedder=None) -> dict[str, Retriever]:
    """The retrievers named in `kinds` over `documents` cut by `chunker` (characters).
    Dense and hybrid share one embedding pass and need `embedder`."""
    unknown = [k for k in kinds if k not in RETRIEVERS]
    if unknown or chunker not in CHUNKERS:
        raise ValueError(f"retrievers are {', '.join(RETRIEVERS)} and chunkers "
                         f"{', '.join(CHUNKERS)}; got {unknown or chunker}")
    passages = passages_of(documents, CHUNKERS[chunker], size=size, overlap=overlap)
    out: dict[str, Retriever] = {}
    lexical = BM25Retriever(passages)
    if "bm25" in kinds:
        out["bm25"] = lexical
    if {"dense", "hybrid"} & set(kinds):
        if embedder is None:
            raise ValueError("dense and hybrid retrieval need an embedder (MiniLM)")
        dense = DenseRetriever(passages, embedder)
        if "dense" in kinds:
            out["dense"] = dense
        if "hybrid" in kinds:
            out["hybrid"] = HybridRetriever(lexical, dense)
    return out


def retrieval_metrics(retriever: Retriever, judged: JudgedSet, depth: int = 100
                      ) -> dict[str, float]:
    """Mean recall@1/5/10, MRR and nDCG@10 of `retriever` on the judged queries (each query's
    `depth` best chunks, folded into documents)."""
    for part in (retriever, getattr(retriever, "dense", None)):
        if isinstance(part, DenseRetriever):
            part.remember(list(judged.queries.values()))
    runs = {q: documents_ranked(retriever.search(text, depth))
            for q, text in judged.queries.items()}
    return mean_metrics(runs, judged.qrels)


def pydoc_set() -> JudgedSet:
    """The English answer set: questions over `pydoc_data.topics` (the language reference)
    with short gold answers that appear verbatim in the judged topic."""
    from pydoc_data.topics import topics

    items = json.loads(PYDOC_QA.read_text(encoding="utf-8"))
    return JudgedSet("pydoc", dict(topics), {str(i): q["question"] for i, q in enumerate(items)},
                     {str(i): {q["topic"]: 1.0} for i, q in enumerate(items)},
                     {str(i): [q["answer"]] for i, q in enumerate(items)})


def answer_metrics(pipeline: RagPipeline, judged: JudgedSet) -> dict[str, float]:
    """Exact match and token F1 (best over the gold answers), how often the reply contains a
    gold answer, and for the model's own citations and the attributed ones apart (plus all
    together): how many per answer, the share of answers with one, and the share of cited
    chunks that hold a gold answer; invented citations and "not in the documents" replies
    are counted too."""
    em = f1 = contained = dropped = refused = 0.0
    kinds = ("model", "attributed", "all")
    cited, correct, answered = ({k: 0 for k in kinds} for _ in range(3))
    n = len(judged.queries)
    for q, question in judged.queries.items():
        answer, golds = pipeline.answer(question), judged.answers[q]
        em += max(exact_match(answer.text, g) for g in golds)
        f1 += max(token_f1(answer.text, g) for g in golds)
        contained += any(contains_answer(answer.text, g) for g in golds)
        for kind in kinds:
            mine = [c for c in answer.citations if kind in ("all", c.kind)]
            cited[kind] += len(mine)
            correct[kind] += sum(any(g in c.text for g in golds) for c in mine)
            answered[kind] += bool(mine)
        dropped += answer.dropped
        refused += not answer.found
    out = {"exact_match": em / n, "token_f1": f1 / n, "answer_contains_gold": contained / n}
    for kind in kinds:
        out |= {f"{kind}_citations_per_answer": cited[kind] / n,
                f"{kind}_cited_answers": answered[kind] / n,
                f"{kind}_citation_accuracy": correct[kind] / cited[kind] if cited[kind] else 0.0}
    return out | {"invented_citations": dropped, "not_found": refused / n, "questions": n}
