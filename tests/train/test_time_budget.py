"""training.max_minutes is a budget for the whole run: time trained before a resume counts."""

from __future__ import annotations

from train_helpers import tiny_config

from lmstack.train import build_trainer, parse_config


def test_a_resumed_run_does_not_restart_the_clock(tokenizer_dir, shards_dir, tmp_path):
    cfg = parse_config(tiny_config(tokenizer_dir, shards_dir, tmp_path, max_steps=100_000,
                                   max_minutes=0.004, save_every=100_000, eval_every=100_000))
    first = build_trainer(cfg)
    summary = first.fit()  # stops on the clock, saving a final checkpoint
    assert 0 < summary["step"] < 100_000 and summary["elapsed"] >= 0.24

    again = build_trainer(cfg)
    assert again.resume() and again.step == summary["step"]
    again.fit()
    assert again.step == summary["step"], "the budget was already spent before the resume"
