"""Gradual magnitude pruning during training: the Trainer's optimizer steps drive Zhu & Gupta's
schedule to its final sparsity, and a weight once pruned stays exactly zero."""

from __future__ import annotations

import pytest
import torch
from train_helpers import tiny_config

from lmstack.quant.prune import MagnitudePruner, cubic_sparsity
from lmstack.train import build_trainer, parse_config


def test_scheduled_sparsity_is_reached_and_pruned_weights_stay_zero(tokenizer_dir, shards_dir,
                                                                      tmp_path):
    trainer = build_trainer(parse_config(tiny_config(
        tokenizer_dir, shards_dir, tmp_path, max_steps=14, eval_every=14, save_every=14)))
    pruner = MagnitudePruner(trainer.raw_model, 0.6, begin_step=2, end_step=10, every=2)
    pruner.attach(trainer.optimizer)
    seen, zeros = [], {n: torch.zeros_like(w, dtype=torch.bool) for n, w in pruner.weights.items()}
    start = {n: w.detach().clone() for n, w in pruner.weights.items()}

    def check(*_):  # runs after the pruner's own hook, after every optimizer step
        for name, w in pruner.weights.items():
            assert (w[zeros[name]] == 0).all(), f"a pruned weight of {name} came back"
            zeros[name] = w == 0
        seen.append(pruner.sparsity())

    trainer.optimizer.register_step_post_hook(check)
    trainer.fit()
    assert len(seen) == 14
    for step, got in enumerate(seen, start=1):  # sparsity is set on every 2nd step, and at end
        due = max(s for s in range(step + 1) if s % 2 == 0 or s >= 10)
        assert got == pytest.approx(cubic_sparsity(due, 0.6, 2, 10), abs=2e-3), step
    assert seen[-1] == pytest.approx(0.6, abs=1e-3)
    alive = [(w != 0) & (w != start[n]) for n, w in pruner.weights.items()]
    assert sum(int(a.sum()) for a in alive) > 0.3 * sum(w.numel() for w in start.values())
