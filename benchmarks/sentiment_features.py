"""The floor under MiniLM on the movie reviews: frozen all-MiniLM-L6-v2 features + logistic
regression, beside the TF-IDF baseline and (a separate, labelled row) both in one linear head.

Fine-tuning MiniLM on 1,600 reviews of ~900 tokens costs tens of minutes a run on two shared
cores; frozen features cost one encoder pass, so they say quickly how much sentiment the
pretrained vectors already hold. Every review is cut into 256-token chunks (the app's `chunks`
cut); each chunk is pooled two ways, the mean over its tokens (how all-MiniLM-L6-v2 was trained
to embed) and the pooled [CLS] vector (what BertForSequenceClassification's head reads), and a
review is the mean of its chunks' vectors.

Choices (the regularisation C, the weight of the MiniLM block beside TF-IDF) are made on a
validation split carved out of the 1,600 training reviews (stratified, seed 1); the chosen
model is then refitted on all 1,600 and scored once on the same 400 held-out reviews as
benchmarks/sentiment.py. Results: benchmarks/results/sentiment_features.json.
Run: `.venv/bin/python benchmarks/sentiment_features.py` (--quick for a smoke run).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).parent))
from engine import write_results  # benchmarks/engine.py
from real_model import cpu_name_and_flags

import lmstack
from lmstack.apps.sentiment.baseline import tfidf_logreg
from lmstack.apps.sentiment.classifier import TextClassifier, classifier_from_encoder
from lmstack.apps.sentiment.corpora import LABELS, load_corpus, sample, stratified_split
from lmstack.apps.sentiment.scores import report
from lmstack.embed.embedder import fastest_dtype
from lmstack.models.bert import mean_pool

RESULTS = Path(__file__).parent / "results" / "sentiment_features.json"
C_GRID = (0.1, 1.0, 10.0)
WEIGHTS = (0.01, 0.02, 0.05, 0.1)  # scale of the standardised MiniLM block beside TF-IDF


@torch.inference_mode()
def chunk_features(texts: list[str], max_length: int) -> dict[str, np.ndarray]:
    """{"mean", "cls"} -> [N, 384]: each review's chunk vectors, averaged over its chunks."""
    encoder, tokenizer = lmstack.load("minilm")
    cut = TextClassifier(classifier_from_encoder(encoder, LABELS), tokenizer, max_length,
                         "chunks")
    bert = cut.model.bert.eval()
    bert.to(fastest_dtype(bert.config.hidden_size, bert.config.intermediate_size))
    owner, rows = [], []
    for i, text in enumerate(texts):
        for window in cut.windows(text):
            owner.append(i)
            rows.append(window)
    pooled = {k: np.zeros((len(rows), bert.config.hidden_size)) for k in ("mean", "cls")}
    order = sorted(range(len(rows)), key=lambda r: len(rows[r]))  # little padding
    for start in range(0, len(order), 32):
        batch = order[start:start + 32]
        ids, mask = cut.collate([rows[r] for r in batch])  # [B, T]
        hidden, cls = bert(ids, mask)  # [B, T, 384], [B, 384]
        pooled["mean"][batch] = mean_pool(hidden, mask, normalize=False).float().numpy()
        pooled["cls"][batch] = cls.float().numpy()
    counts = np.bincount(owner, minlength=len(texts))[:, None]
    out = {}
    for k, v in pooled.items():
        out[k] = np.zeros((len(texts), v.shape[1]))
        np.add.at(out[k], owner, v)
        out[k] /= counts
    return out


def accuracy_of(model, X, y, fit, val) -> float:
    return float((model.fit(X[fit], y[fit]).predict(X[val]) == y[val]).mean())


def standardised(X: np.ndarray, rows: list[int]) -> np.ndarray:
    """Zero mean, unit variance per dimension, measured on `rows` only."""
    return (X - X[rows].mean(0)) / (X[rows].std(0) + 1e-8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="tiny slices: checks the script runs")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    corpus = load_corpus("movie_reviews")
    y = np.array(corpus.labels)
    train, test = stratified_split(corpus.labels)
    if args.quick:
        train, test = sample(train, 80), sample(test, 20)
    inner_fit, inner_val = stratified_split([corpus.labels[i] for i in train], seed=1)
    fit, val = [train[i] for i in inner_fit], [train[i] for i in inner_val]
    used = sorted(train + test)
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": {**cpu_name_and_flags(), "cores": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "load_average_before": os.getloadavg()},
              "split": {"test_fraction": 0.2, "seed": 0, "stratified": True,
                        "validation": "20% of the training split, stratified, seed 1"},
              "train": len(train), "validation_inside_train": len(val), "test": len(test),
              "max_length": args.max_length, "rows": []}

    start = time.perf_counter()
    feats = chunk_features([corpus.texts[i] for i in used], args.max_length)
    result["encode_s"] = time.perf_counter() - start
    feats = {k: _scatter(v, used, len(y)) for k, v in feats.items()}

    def row(name: str, model, X, choice: dict, val_acc: float) -> None:
        predicted = model.fit(X[train], y[train]).predict(X[test])
        result["rows"].append({"model": name, **report(y[test].tolist(), predicted.tolist()),
                               "validation_accuracy": val_acc, **choice})
        print(result["rows"][-1], flush=True)

    tfidf = tfidf_logreg("en").steps[0][1]  # the baseline's own vectorizer and settings
    T = tfidf.fit([corpus.texts[i] for i in fit]).transform(corpus.texts)  # for choices
    T_all = tfidf.fit([corpus.texts[i] for i in train]).transform(corpus.texts)  # for scores
    base = LogisticRegression(C=10.0, max_iter=3000)
    row("tf-idf + logistic regression (the baseline)", base, T_all, {},
        accuracy_of(base, T, y, fit, val))
    for pooling in ("mean", "cls"):
        X = standardised(feats[pooling], fit)
        scored = {C: accuracy_of(LogisticRegression(C=C, max_iter=3000), X, y, fit, val)
                  for C in C_GRID}
        best = max(scored, key=scored.get)
        row(f"frozen all-MiniLM-L6-v2 ({pooling}-pooled chunks) + logistic regression",
            LogisticRegression(C=best, max_iter=3000), standardised(feats[pooling], train),
            {"C": best}, scored[best])
    X = standardised(feats["mean"], fit)
    scored = {w: accuracy_of(base, sp.hstack([T, sp.csr_matrix(X * w)]).tocsr(), y, fit, val)
              for w in WEIGHTS}
    best = max(scored, key=scored.get)
    X = standardised(feats["mean"], train)
    row("combination: tf-idf + frozen MiniLM mean features, one logistic regression", base,
        sp.hstack([T_all, sp.csr_matrix(X * best)]).tocsr(), {"minilm_weight": best},
        scored[best])
    result["load_average_after"] = os.getloadavg()
    if not args.quick or args.out != RESULTS:  # a smoke run leaves the real results be
        write_results(args.out, result)
    return 0


def _scatter(v: np.ndarray, rows: list[int], n: int) -> np.ndarray:
    """Rows of `v` (one per entry of `rows`) placed at those indices of an [n, dim] array."""
    out = np.zeros((n, v.shape[1]))
    out[rows] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
