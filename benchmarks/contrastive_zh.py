"""A Chinese embedding model of our own: a small BERT with a character vocabulary, trained from
random weights by contrastive learning (in-batch negatives, symmetric InfoNCE) with the
Trainer on CMRC 2018 trial question -> paragraph pairs; recall@k on held-out questions against
BM25 over character bigrams.

Split by paragraph: the questions of 20% of the paragraphs are held out, their paragraphs are
never a positive in training; the search corpus is all 256 paragraphs (the training ones are
distractors). Run: `.venv/bin/python benchmarks/contrastive_zh.py` (10-20 minutes on 2 loaded
cores). Results: benchmarks/results/contrastive_zh.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lmstack.embed import Embedder
from lmstack.embed.contrastive import Contrastive, ContrastivePairs
from lmstack.fileio import atomic_write_text
from lmstack.models.bert import BertConfig, BertModel
from lmstack.retrieve.bm25 import BM25, tokenize
from lmstack.retrieve.index import ExactIndex
from lmstack.tokenizer.char_vocab import train_char_vocab
from lmstack.train.config import TrainConfig
from lmstack.train.trainer import Trainer

CMRC = Path(__file__).resolve().parents[2] / "shared/data/retrieval/cmrc2018_trial.json"
RESULTS = Path(__file__).parent / "results" / "contrastive_zh.json"
KS = (1, 5, 10)


def load_cmrc(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(paragraphs, [(question, index of its paragraph)])."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs, questions = [], []
    for article in data:
        for p in article["paragraphs"]:
            questions += [(qa["question"], len(paragraphs)) for qa in p["qas"]]
            paragraphs.append(p["context"])
    return paragraphs, questions


def recall_at(ranked: list[list[int]], gold: list[int]) -> dict[str, float]:
    return {f"recall@{k}": float(np.mean([g in r[:k] for r, g in zip(ranked, gold, strict=True)]))
            for k in KS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--passage-chars", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not CMRC.is_file():
        raise SystemExit(f"{CMRC} is missing: this benchmark needs ../shared/data")

    paragraphs, questions = load_cmrc(CMRC)
    held = set(random.Random(0).sample(range(len(paragraphs)), len(paragraphs) // 5))
    train = [(q, paragraphs[p]) for q, p in questions if p not in held]
    test = [(q, p) for q, p in questions if p in held]

    work = Path(tempfile.mkdtemp(prefix="contrastive_zh_"))
    # The vocabulary sees only training text: characters first met in test questions are [UNK].
    tokenizer = train_char_vocab([q for q, _ in train] + [paragraphs[i] for i in
                                 range(len(paragraphs)) if i not in held], work / "tokenizer",
                                 min_count=2)
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden,
        max_position_embeddings=512), add_pooling_layer=False)
    config = TrainConfig.model_validate({
        "data": {"files": []},  # the pairs come from code, not files
        "optimizer": {"lr": 5e-4, "weight_decay": 0.01},
        "schedule": {"warmup_steps": args.steps // 10},
        "training": {"out_dir": str(work / "run"), "max_steps": args.steps,
                     "micro_batch_size": args.batch, "device": "cpu", "log_every": 20,
                     "eval_every": 10 * args.steps, "save_every": 10 * args.steps,
                     "progress": sys.stderr.isatty()}})
    data = ContrastivePairs(train, tokenizer, max_length=args.passage_chars)
    t0 = time.perf_counter()
    Trainer(encoder, Contrastive(temperature=0.05), data, config).fit()
    train_s = time.perf_counter() - t0
    logged = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [[r["step"], r["loss"]] for r in logged if "loss" in r]  # every log_every steps

    embedder = Embedder(encoder, tokenizer, max_length=args.passage_chars, batch_size=32)
    index = ExactIndex(embedder.dim)
    index.add(list(range(len(paragraphs))), embedder.encode(paragraphs))
    queries = embedder.encode([q for q, _ in test])
    dense = [[h.id for h in hits] for hits in index.search_batch(queries, max(KS))]
    bm25 = BM25([tokenize(p) for p in paragraphs])
    lexical = [[i for i, _ in bm25.search(tokenize(q), max(KS))] for q, _ in test]
    gold = [p for _, p in test]

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(), "threads": args.threads,
        "data": {"paragraphs": len(paragraphs), "train_pairs": len(train),
                 "test_questions": len(test), "held_out_paragraphs": len(held)},
        "model": {"hidden": args.hidden, "layers": args.layers, "vocab": len(tokenizer),
                  "parameters": sum(p.numel() for p in encoder.parameters()),
                  "passage_chars": args.passage_chars},
        "training": {"steps": args.steps, "batch": args.batch, "seconds": train_s,
                     "loss_by_step": losses},
        "ours_dense": recall_at(dense, gold), "bm25_char_bigrams": recall_at(lexical, gold),
    }
    text = json.dumps(report, indent=2) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
