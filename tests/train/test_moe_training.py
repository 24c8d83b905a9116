"""A mixture-of-experts Llama, chosen in the YAML config alone, trains with the one Trainer."""

from __future__ import annotations

import torch
from train_helpers import tiny_config

from lmstack.models import load_model
from lmstack.nn.moe import MoEFeedForward
from lmstack.train import build_trainer, parse_config


def test_moe_llama_trains_saves_and_reloads(tokenizer_dir, shards_dir, tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path, max_steps=12, eval_every=12,
                      save_every=12)
    cfg["model"]["config"].update(n_experts=4, experts_per_token=2, intermediate_size=32)
    trainer = build_trainer(parse_config(cfg))
    layers = [m for m in trainer.raw_model.modules() if isinstance(m, MoEFeedForward)]
    assert len(layers) == 2
    first = trainer.evaluate()["val_loss"]
    result = trainer.fit()
    assert result["val_loss"] < first - 0.15, (first, result["val_loss"])
    # A training step records each layer's balancing loss, and the router gets gradients.
    trainer.forward_backward(trainer.draw_micro_batches())
    for layer in layers:
        assert layer.aux_loss is not None and layer.gate.weight.grad.abs().sum() > 0
    saved = max((tmp_path / "checkpoints").iterdir())
    again = load_model(saved).eval()
    ids = torch.randint(0, 300, (1, 16))
    trainer.raw_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ids), trainer.raw_model(ids))
