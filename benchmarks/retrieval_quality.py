"""Retrieval and RAG answer quality: BM25, dense (MiniLM) and hybrid (language-aware RRF)
retrieval with the fixed and recursive chunkers on Cranfield and CMRC 2018 (recall@k, MRR,
nDCG@10), each ± MMR, hybrid ± SmolLM2 re-ranking on a subset of queries, the language-blind
RRF it replaced, the "not in the documents" threshold tuned, and SmolLM2's answers over the
Python reference per prompt layout (exact match, token F1, model and attributed citations).

The reference side: rank_bm25's BM25Okapi scores the same passages with the same tokens, so
its nDCG@10 must equal ours (a parity row, not a competitor). Chunk embeddings are cached by
text, so a document both chunkers leave whole is embedded once.
Run: `.venv/bin/python benchmarks/retrieval_quality.py` (needs ../shared/data and the MiniLM
wheel; minutes on 2 quiet cores, far longer on busy ones; `--cranfield-queries 50
--qa 10` for a quick pass). Writes results/retrieval_quality.json after every part.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import copy
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np

from lmstack.evals.retrieval import mean_metrics
from lmstack.fileio import atomic_write_text
from lmstack.rag.eval_sets import JudgedSet, load_cmrc, load_cranfield
from lmstack.rag.evaluate import (
    CHUNKERS,
    answer_metrics,
    build_retrievers,
    pydoc_set,
    retrieval_metrics,
)
from lmstack.rag.prompt import LAYOUTS
from lmstack.rag.retriever import HybridRetriever, documents_ranked
from lmstack.rag.second_stage import MMRRetriever, RerankedRetriever
from lmstack.retrieve.bm25 import tokenize

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval"
RESULTS = Path(__file__).parent / "results" / "retrieval_quality.json"


class CachedEmbedder:
    """An Embedder that embeds each distinct text once (chunkers agree on short documents)."""

    def __init__(self, embedder) -> None:
        self.embedder, self.dim, self.cache = embedder, embedder.dim, {}
        self.scripts = embedder.scripts

    def blind(self) -> CachedEmbedder:
        """The same vectors (and cache), declaring no scripts: hybrid fuses it everywhere,
        the language-blind RRF this benchmark compares against."""
        other = copy.copy(self)
        other.scripts = None
        return other

    def encode(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            self.cache |= dict(zip(todo, self.embedder.encode(todo), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else \
            np.zeros((0, self.dim), np.float32)


def rank_bm25_ndcg(retriever, judged: JudgedSet) -> float:
    """nDCG@10 of rank_bm25.BM25Okapi over the same passages and tokens as our BM25."""
    from rank_bm25 import BM25Okapi

    reference = BM25Okapi([tokenize(p.text) for p in retriever.passages])
    runs = {}
    for q, text in judged.queries.items():
        scores = reference.get_scores(tokenize(text))
        best = [i for i in np.argsort(-scores, kind="stable")[:100] if scores[i] > 0]
        runs[q] = documents_ranked([retriever.passages[i] for i in best])
    return mean_metrics(runs, judged.qrels)["ndcg@10"]


def machine() -> dict:
    cpu, flags = platform.processor(), []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx")))
            break
    return {"cpu": cpu, "vector_flags": flags, "cores": os.cpu_count(),
            "load_average_start": os.getloadavg()}


def second_stages(built: dict, embedder) -> dict:
    """For the recursive chunker's table: each retriever + MMR (lambda 0.5 over its top 20),
    and the language-blind hybrid (RRF of both lists whatever the query's script)."""
    dense = built["dense"]
    blind = copy.copy(dense)
    blind.embedder = embedder.blind()
    return {**{f"{name} + MMR": MMRRetriever(r, dense) for name, r in built.items()},
            "hybrid, language-blind RRF": HybridRetriever(built["bm25"], blind)}


def score_row(judged: JudgedSet, chunker: str, size: int, overlap: int, name: str,
              retriever, **extra) -> dict:
    t0 = time.perf_counter()
    m = retrieval_metrics(retriever, judged)
    print(f"{judged.name:9} {chunker:9} {name:28} nDCG@10 {m['ndcg@10']:.3f} "
          f"MRR {m['mrr']:.3f} R@10 {m['recall@10']:.3f}", flush=True)
    return {"dataset": judged.name, "chunker": chunker, "size": size, "overlap": overlap,
            "retriever": name, **extra, "search_s": time.perf_counter() - t0, **m}


def quality_table(judged: JudgedSet, embedder, size: int, overlap: int) -> list[dict]:
    rows = []
    for chunker in CHUNKERS:
        t0 = time.perf_counter()
        built = build_retrievers(judged.documents, chunker=chunker, size=size, overlap=overlap,
                                 embedder=embedder)
        build_s = time.perf_counter() - t0
        more = second_stages(built, embedder) if chunker == "recursive" else {}
        for name, retriever in (built | more).items():
            rows.append(score_row(judged, chunker, size, overlap, name, retriever,
                                  passages=len(built["bm25"].passages), build_s=build_s))
        if chunker == "recursive":
            rows.append({"dataset": judged.name, "chunker": chunker, "size": size,
                         "overlap": overlap, "retriever": "rank_bm25 (reference)",
                         "ndcg@10": rank_bm25_ndcg(built["bm25"], judged)})
    return rows


def tune_threshold(hybrid, positives: list[str], negatives: list[str]) -> dict:
    """The cosine threshold with the best accuracy at telling answerable questions (top hit
    at or above it) from unanswerable ones (below it)."""
    pos = np.array([hybrid.search(q, 1)[0].score for q in positives])
    neg = np.array([hybrid.search(q, 1)[0].score for q in negatives])
    grid = np.round(np.arange(0.05, 0.80, 0.01), 2)
    accuracy = [((pos >= t).sum() + (neg < t).sum()) / (len(pos) + len(neg)) for t in grid]
    best = int(np.argmax(accuracy))
    return {"threshold": float(grid[best]), "accuracy": float(accuracy[best]),
            "answerable_kept": float((pos >= grid[best]).mean()),
            "unanswerable_refused": float((neg < grid[best]).mean()),
            "answerable_median_cosine": float(np.median(pos)),
            "unanswerable_median_cosine": float(np.median(neg)),
            "answerable": len(pos), "unanswerable": len(neg)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cranfield-queries", type=int, default=None, help="default: all 225")
    ap.add_argument("--cmrc-queries", type=int, default=None, help="default: all")
    ap.add_argument("--qa", type=int, default=None, help="pydoc questions (default: all)")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--rerank-queries", type=int, default=50,
                    help="queries per set that SmolLM2 re-ranks (the slow part)")
    ap.add_argument("--rerank-sets", default="cranfield,cmrc2018", help="sets to re-rank")
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help="prompt layouts to answer with")
    ap.add_argument("--parts", default="retrieval,rerank,answers",
                    help="retrieval (the tables, MMR rows), rerank (SmolLM2 re-ranking a "
                    "subset), answers (threshold and SmolLM2 answers per prompt layout): run "
                    "them as separate processes if you like; each updates only its own keys")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))

    from lmstack.rag.minilm import load_minilm

    embedder = CachedEmbedder(load_minilm())
    mine: dict = {}

    def save() -> None:
        """Merge this run's keys into the results file (the other part's keys stay)."""
        result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
        result |= mine
        result[f"machine_{args.parts}"] = {**machine_start, "load_average_now":
                                           os.getloadavg()}
        atomic_write_text(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")

    machine_start = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                     **machine()}
    if "retrieval" in parts:
        retrieval_part(args, embedder, mine, save)
    if "rerank" in parts:
        rerank_part(args, embedder, mine, save)
    if "answers" in parts:
        answers_part(args, embedder, mine, save)
    return 0


def judged_sets(args) -> list[tuple[JudgedSet, int, int]]:
    """(set, chunk size, overlap): Cranfield abstracts average 1,000 characters, CMRC
    paragraphs 520 Chinese ones."""
    cran = load_cranfield(DATA / "cranfield")
    cran = cran.head(args.cranfield_queries) if args.cranfield_queries else cran
    cmrc = load_cmrc(DATA / "cmrc2018_trial.json")
    cmrc = cmrc.head(args.cmrc_queries) if args.cmrc_queries else cmrc
    return [(cran, 1024, 128), (cmrc, 512, 64)]


def retrieval_part(args, embedder, mine: dict, save) -> None:
    mine["retrieval"] = []
    for judged, size, overlap in judged_sets(args):
        mine["retrieval"] += quality_table(judged, embedder, size, overlap)
        save()


def rerank_part(args, embedder, mine: dict, save) -> None:
    """Hybrid's top 20 re-ordered by SmolLM2's yes/no log-odds, on the first
    --rerank-queries judged queries of each set (against hybrid on the same queries)."""
    import lmstack
    from lmstack.retrieve.rerank import YesNoReranker

    model, tokenizer = lmstack.load("smollm2")
    reranker = YesNoReranker(model, tokenizer)
    sets = args.rerank_sets.split(",")
    earlier = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    # rows of the sets this run does not re-rank stay: a later run can add a set
    mine["rerank"] = [r for r in earlier.get("rerank", []) if r["dataset"] not in sets]
    for judged, size, overlap in judged_sets(args):
        if judged.name not in sets:
            continue
        head = judged.head(args.rerank_queries)
        hybrid = build_retrievers(judged.documents, ["hybrid"], size=size, overlap=overlap,
                                  embedder=embedder)["hybrid"]
        for name, retriever in (("hybrid", hybrid), ("hybrid + SmolLM2 re-rank (top 20)",
                                                     RerankedRetriever(hybrid, reranker))):
            mine["rerank"].append(score_row(head, "recursive", size, overlap, name, retriever,
                                            of_queries=len(judged.queries)))
            save()


def answers_part(args, embedder, mine: dict, save) -> None:
    pydoc = pydoc_set()
    qa = pydoc.head(args.qa) if args.qa else pydoc
    hybrid = build_retrievers(pydoc.documents, ["hybrid"], size=800, overlap=100,
                              embedder=embedder)["hybrid"]
    mine["threshold"] = tune_threshold(hybrid, list(pydoc.queries.values()),
                                         list(load_cranfield(DATA / "cranfield")
                                              .queries.values())[:100])
    print("threshold", mine["threshold"], flush=True)
    save()

    import lmstack
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel
    from lmstack.rag.pipeline import RagPipeline

    model, tokenizer = lmstack.load("smollm2")
    chat = EngineChatModel(Engine(model, tokenizer, max_num_seqs=1, column_major=True))
    mine["answers"] = {"retriever": "hybrid, recursive 800/100, k=3", "generator":
                       "SmolLM2-135M-Instruct (Q4_1 GGUF), greedy",
                       "max_tokens": args.max_tokens, "layouts": {}}
    for layout in args.layouts.split(","):
        t0 = time.perf_counter()
        pipeline = RagPipeline(hybrid, chat, k=3, layout=layout, max_tokens=args.max_tokens)
        mine["answers"]["layouts"][layout] = {**answer_metrics(pipeline, qa),
                                              "seconds": time.perf_counter() - t0}
        print("answers", layout, mine["answers"]["layouts"][layout], flush=True)
        save()


if __name__ == "__main__":
    raise SystemExit(main())
