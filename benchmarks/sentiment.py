"""The sentiment app's held-out scores: both fine-tuned BERTs beside both TF-IDF baselines.

One process, one fixed split per corpus (80/20, stratified, seed 0), every model scored on the
same held-out reviews:
  ChnSentiCorp  TF-IDF char 1-3-grams + logistic regression, and a small Chinese char-BERT
                pretrained here with masked LM (the training split's reviews plus the Chinese
                Debian Reference, never the held-out reviews), then fine-tuned;
  movie reviews TF-IDF word 1-2-grams + logistic regression, and the real all-MiniLM-L6-v2
                fine-tuned on whole reviews in 256-token chunks (a review's logits are the
                mean of its chunks'), layers 1-4 frozen, layers 5-6 and a mean-pooling
                head trained; once per seed (--seeds), since one run's score swings with
                the seed.
Settings are the app's recipes (lmstack/apps/sentiment/recipes.py), so `lmstack apps
sentiment train` with no options trains the models measured here.
--validation is how the recipe's settings are chosen without looking at the held-out reviews:
it carves a validation split out of the training split (20%, stratified, seed 1), trains on the
rest and scores there, the held-out reviews never read; --freeze-layers lists the settings to
compare. Its results go to benchmarks/results/sentiment_validation.json.
Results go to benchmarks/results/sentiment.json after each model (written atomically), with
the CPU, its flags and the load average, since the machine may be shared; --corpora reruns
one corpus and keeps the other's last results.
Run: `.venv/bin/python benchmarks/sentiment.py` (sizes below; --quick for a smoke run).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine import write_results  # benchmarks/engine.py
from real_model import cpu_name_and_flags

import lmstack
from lmstack.apps.sentiment.baseline import baseline_predictions
from lmstack.apps.sentiment.classifier import TextClassifier, classifier_from_encoder
from lmstack.apps.sentiment.corpora import LABELS, SHARED, load_corpus, sample, stratified_split
from lmstack.apps.sentiment.finetune import finetune
from lmstack.apps.sentiment.frozen import bottom_features
from lmstack.apps.sentiment.recipes import RECIPES
from lmstack.apps.sentiment.scores import report
from lmstack.apps.sentiment.zh_encoder import SMALL, pretrain_chinese_bert

RESULTS = Path(__file__).parent / "results" / "sentiment.json"
VALIDATION_RESULTS = RESULTS.with_name("sentiment_validation.json")
ZH_EXTRA = SHARED.parent / "docs" / "debian-reference.zh-cn.txt"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def baseline_row(corpus, train, test) -> dict:
    predicted, seconds = timed(baseline_predictions, corpus.language, train.texts,
                               train.labels, test.texts)
    return {"model": "tf-idf + logistic regression", **report(test.labels, predicted),
            "fit_and_predict_s": seconds}


def score(classifier: TextClassifier, test) -> dict:
    predicted, seconds = timed(classifier.predict, test.texts)
    return {**report(test.labels, predicted), "predict_s": seconds}


def chinese_bert(args, train, test) -> dict:
    r = RECIPES["zh"]
    lines = train.texts + [line for line in ZH_EXTRA.read_text(encoding="utf-8").splitlines()
                           if line.strip()]
    (mlm, tokenizer, losses), pre_s = timed(pretrain_chinese_bert, lines,
                                            steps=args.zh_pretrain_steps, log=print)
    classifier = TextClassifier(classifier_from_encoder(mlm, LABELS), tokenizer,
                                max_length=r.max_length, truncation=r.truncation)
    _, tune_s = timed(finetune, classifier, train.texts, train.labels, epochs=args.zh_epochs,
                      lr=r.lr, batch_size=r.batch_size, log=print)
    return {"model": "char-BERT, masked-LM pretrained here, fine-tuned", **score(classifier, test),
            "pretrain_steps": args.zh_pretrain_steps, "pretrain_s": pre_s,
            "mlm_loss_first_last": [losses[0], sum(losses[-20:]) / len(losses[-20:])],
            "finetune_epochs": args.zh_epochs, "finetune_s": tune_s, "lr": r.lr,
            "max_length": r.max_length, "truncation": r.truncation,
            "vocab_size": len(tokenizer), **SMALL}


def english_minilm(args, train, test, on_row) -> None:
    """The recipe once per seed (and per --freeze-layers setting); the frozen layers' output for
    the training windows is the same for every seed (the same pretrained weights, no dropout),
    so it is computed once per setting."""
    r = RECIPES["en"]
    encoder, tokenizer = lmstack.load(r.init)

    def fresh(seed: int) -> TextClassifier:
        torch.manual_seed(seed)  # the head's init
        return TextClassifier(classifier_from_encoder(encoder, LABELS, r.pooling), tokenizer,
                              max_length=r.max_length, truncation=r.truncation)

    windows = [w for text in train.texts for w in fresh(0).windows(text)]
    for frozen in args.freeze_layers or [r.freeze_layers]:
        features, cache_s = timed(bottom_features, fresh(0), windows, frozen)
        print(f"{len(windows)} training windows through the {frozen} frozen layers in "
              f"{cache_s:.0f}s", flush=True)
        for seed in args.seeds:
            classifier = fresh(seed)
            _, tune_s = timed(finetune, classifier, train.texts, train.labels,
                              epochs=args.en_epochs, lr=r.lr, batch_size=r.batch_size, seed=seed,
                              freeze_layers=frozen, features=features, log=print)
            on_row({"model": "all-MiniLM-L6-v2 fine-tuned", "seed": seed,
                    **score(classifier, test), "frozen_layers_s": cache_s, "finetune_s": tune_s,
                    "train_s": cache_s + tune_s, "train_windows": len(windows),
                    "finetune_epochs": args.en_epochs, "lr": r.lr, "batch_size": r.batch_size,
                    "max_length": r.max_length, "truncation": r.truncation,
                    "pooling": r.pooling, "freeze_layers": frozen,
                    "load_average": os.getloadavg()})


def seed_summary(rows: list[dict]) -> dict:
    """Mean, min and max accuracy over the seeds' rows."""
    accs = [row["accuracy"] for row in rows]
    return {"model": f"all-MiniLM-L6-v2 fine-tuned, mean of {len(accs)} seeds",
            "accuracy": sum(accs) / len(accs), "accuracy_min": min(accs),
            "accuracy_max": max(accs), "seeds": [row["seed"] for row in rows],
            "freeze_layers": rows[0]["freeze_layers"]}


def validation_split(train_rows: list[int], labels: list[int]) -> tuple[list[int], list[int]]:
    """A fifth of the training rows (stratified, seed 1) held back for choosing settings."""
    fit, held = stratified_split([labels[i] for i in train_rows], 0.2, seed=1)
    return [train_rows[i] for i in fit], [train_rows[i] for i in held]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zh-pretrain-steps", type=int, default=RECIPES["zh"].pretrain_steps)
    p.add_argument("--zh-epochs", type=float, default=RECIPES["zh"].epochs)
    p.add_argument("--en-epochs", type=float, default=RECIPES["en"].epochs)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="English fine-tuning seeds (the split stays seed 0)")
    p.add_argument("--corpora", nargs="+", default=["movie_reviews", "chnsenticorp"],
                   help="rerun these only; the others' results stay as they are in --out")
    p.add_argument("--validation", action="store_true",
                   help="score on a validation split of the training reviews, not the held-out")
    p.add_argument("--freeze-layers", type=int, nargs="+",
                   help="English settings to compare (default: the recipe's)")
    p.add_argument("--quick", action="store_true", help="tiny slices: checks the script runs")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    args.out = args.out or (VALIDATION_RESULTS if args.validation else RESULTS)
    if args.quick:
        args.zh_pretrain_steps, args.zh_epochs, args.en_epochs = 3, 0.02, 0.02
    machine = {**cpu_name_and_flags(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    kept = {}
    if args.out.is_file():  # a corpus not rerun keeps its results, dated and placed
        last = json.loads(args.out.read_text())
        kept = {name: {"date": last["date"], "machine": last["machine"], **entry}
                for name, entry in last["corpora"].items()}
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine,
              "split": {"test_fraction": 0.2, "seed": 0, "stratified": True,
                        "scored_on": "validation: 20% of the training split, seed 1"
                        if args.validation else "the held-out test split"},
              "corpora": {k: v for k, v in kept.items() if k not in args.corpora}}
    for name in args.corpora:
        corpus = load_corpus(name)
        train_rows, test_rows = stratified_split(corpus.labels)
        if args.validation:  # the held-out rows are dropped here, never read
            train_rows, test_rows = validation_split(train_rows, corpus.labels)
        if args.quick:
            train_rows, test_rows = sample(train_rows, 64), sample(test_rows, 32)
        train, test = corpus.subset(train_rows), corpus.subset(test_rows)
        entry = result["corpora"][name] = {
            "date": result["date"], "machine": machine, "train": len(train.texts),
            "test": len(test.texts), "load_average_before": os.getloadavg(), "rows": []}

        def on_row(row: dict, entry=entry, name=name) -> None:
            entry["rows"].append(row)
            print(name, row, flush=True)
            seeded = [r for r in entry["rows"] if "seed" in r]
            settings = sorted({r["freeze_layers"] for r in seeded})
            entry["seed_summary"] = [seed_summary([r for r in seeded if r["freeze_layers"] == k])
                                     for k in settings] or None
            entry["load_average_after"] = os.getloadavg()
            # a smoke run leaves the real results be
            if not args.quick or args.out not in (RESULTS, VALIDATION_RESULTS):
                write_results(args.out, result)

        on_row(baseline_row(corpus, train, test))
        if name == "movie_reviews":
            english_minilm(args, train, test, on_row)
        else:
            on_row(chinese_bert(args, train, test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
