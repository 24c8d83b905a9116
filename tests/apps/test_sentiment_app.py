"""The sentiment app end to end: `lmstack apps sentiment train` then `eval` as a user runs
them (real subprocesses, real corpora from ../shared/data, the real all-MiniLM-L6-v2), and a
saved classifier folder that reloads, in lmstack and in transformers, to the same answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from lmstack.apps.sentiment.classifier import TextClassifier
from lmstack.apps.sentiment.finetune import finetune

sys.path.insert(0, str(Path(__file__).parents[1]))
from cli_helpers import run_lmstack

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "classification"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


@needs_data
def test_train_then_eval_english_from_minilm(tmp_path, minilm_folder):
    out = tmp_path / "en"
    done = run_lmstack("apps", "sentiment", "train", "--corpus", "movie_reviews",
                       "--data", str(DATA / "movie_reviews.jsonl"), "--out", str(out),
                       "--limit", "24", "--max-steps", "3", "--batch-size", "8",
                       "--max-length", "48", "--truncation", "head_tail")
    assert done.returncode == 0, done.stderr
    assert "step 3/3" in done.stdout
    assert json.loads((out / "classifier.json").read_text())["corpus"] == "movie_reviews"
    scored = run_lmstack("apps", "sentiment", "eval", str(out), "--limit", "40",
                         "--data", str(DATA / "movie_reviews.jsonl"))
    assert scored.returncode == 0, scored.stderr
    assert "40 held-out reviews" in scored.stdout
    rows = [line for line in scored.stdout.splitlines() if "0." in line]
    assert any("classifier" in r for r in rows) and any("tf-idf" in r for r in rows), rows
    baseline = next(r for r in rows if "tf-idf" in r)
    accuracy = float(baseline.split("│")[2])
    assert 0.7 < accuracy <= 1.0  # TF-IDF on 1,600 reviews: ~0.89 on the full test split


@needs_data
def test_train_chinese_with_a_short_masked_lm_pretraining(tmp_path):
    out = tmp_path / "zh"
    done = run_lmstack("apps", "sentiment", "train", "--corpus", "chnsenticorp",
                       "--data", str(DATA / "ChnSentiCorp_htl_all.csv"), "--out", str(out),
                       "--init", "pretrain", "--pretrain-steps", "2", "--limit", "32",
                       "--max-steps", "2", "--batch-size", "8", "--max-length", "32")
    assert done.returncode == 0, done.stderr
    assert "masked-LM steps" in done.stdout and "step 2/2" in done.stdout
    scored = run_lmstack("apps", "sentiment", "eval", str(out), "--limit", "30",
                         "--no-baseline", "--data", str(DATA / "ChnSentiCorp_htl_all.csv"))
    assert scored.returncode == 0, scored.stderr
    assert "30 held-out reviews" in scored.stdout and "classifier" in scored.stdout


def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path):
    for args, says in [
        (("train", "--corpus", "tweets", "--out", str(tmp_path / "x")), "unknown corpus"),
        (("train", "--corpus", "movie_reviews", "--out", str(tmp_path / "x"), "--data",
          str(tmp_path / "missing.jsonl")), "not found"),
        (("eval", str(tmp_path)), "not a classifier folder"),
        (("train", "--corpus", "movie_reviews", "--out", str(tmp_path / "x"), "--pooling",
          "max"), "--pooling must be one of cls, mean"),
        (("train", "--corpus", "movie_reviews", "--out", str(tmp_path / "x"),
          "--freeze-layers", "-1"), "--freeze-layers must be 0"),
    ]:
        done = run_lmstack("apps", "sentiment", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2  # one line, perhaps soft-wrapped


def test_saved_classifier_reloads_to_the_same_predictions(tmp_path, tiny_sentiment_classifier):
    import transformers

    clf = tiny_sentiment_classifier
    texts = ["房间很干净，服务也好", "太吵了", "a lovely film", "dull and slow " * 20]
    finetune(clf, texts, [1, 0, 1, 0], max_steps=2, batch_size=2)
    before = clf.predict_proba(texts)
    clf.save(tmp_path / "clf", corpus="chnsenticorp", seed=0)
    again = TextClassifier.load(tmp_path / "clf")
    assert again.truncation == "chunks" and again.max_length == 16
    assert again.labels == ["negative", "positive"]
    assert (abs(again.predict_proba(texts) - before)).max() < 1e-6
    assert [r["label"] for r in again.classify(texts)] == [
        clf.labels[i] for i in before.argmax(-1)]
    # The folder is an ordinary HF one: transformers reads the same logits from it.
    hf = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    ids, mask = again.collate(again.windows(texts[0]))
    with torch.no_grad():
        assert (hf(input_ids=ids, attention_mask=mask).logits
                - again.model(ids, mask)).abs().max() < 1e-5
