"""Gradient equivalences: accumulation == big batch, checkpointing on == off, bf16 trains."""

from __future__ import annotations

import torch
from train_helpers import TINY_LLAMA, tiny_config

from lmstack.data import MLMSequences, SpecialIds
from lmstack.models import BertConfig, BertForMaskedLM
from lmstack.train import Trainer, build_trainer, parse_config
from lmstack.train.objectives import MaskedLM


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same_grads(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys() and a
    for name, grad in a.items():
        torch.testing.assert_close(grad, b[name], atol=atol, rtol=1e-5, msg=name)


def _step_grads(tokenizer_dir, shards_dir, tmp_path, micro: int, accum: int, **model_opts):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / f"run{micro}x{accum}",
                      micro_batch_size=micro, grad_accum=accum)
    cfg["model"].update(model_opts)
    trainer = build_trainer(parse_config(cfg))
    loss = trainer.forward_backward(trainer.draw_micro_batches())
    return loss, _grads(trainer.raw_model)


def test_accumulated_gradients_equal_big_batch(tokenizer_dir, shards_dir, tmp_path):
    big_loss, big = _step_grads(tokenizer_dir, shards_dir, tmp_path, micro=8, accum=1)
    acc_loss, acc = _step_grads(tokenizer_dir, shards_dir, tmp_path, micro=2, accum=4)
    assert abs(big_loss["lm"] - acc_loss["lm"]) < 1e-6
    _assert_same_grads(big, acc)


def test_masked_lm_accumulation_weights_by_target_count(tmp_path):
    """Micro-batches with different numbers of masked tokens must still add up exactly."""
    vocab = 100
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, max_position_embeddings=64)
    data = MLMSequences(torch.randint(5, vocab, (5000,), generator=torch.Generator()
                                      .manual_seed(0)).numpy(), 32,
                        SpecialIds(cls=1, sep=2, mask=3, pad=0, vocab_size=vocab))
    grads, losses = [], []
    for micro, accum in ((8, 1), (1, 8)):
        torch.manual_seed(0)
        model = BertForMaskedLM(config)
        cfg = parse_config({"model": {"architecture": "BertForMaskedLM",
                                      "config": {"hidden_size": 32}},
                            "objective": {"name": "mlm"},
                            "data": {"shards": str(tmp_path), "seq_len": 32},
                            "training": {"micro_batch_size": micro, "grad_accum": accum,
                                         "out_dir": str(tmp_path / f"r{micro}"),
                                         "progress": False}})
        trainer = Trainer(model, MaskedLM(), data, cfg)
        batches = trainer.draw_micro_batches()
        counts = [int((b["labels"] != -100).sum()) for b in batches]
        losses.append(trainer.forward_backward(batches)["lm"])
        grads.append(_grads(model))
    assert len(set(counts)) > 1, "micro-batches should differ in masked-token counts"
    assert abs(losses[0] - losses[1]) < 1e-5
    _assert_same_grads(grads[0], grads[1], atol=1e-6)


def test_gradient_checkpointing_gives_equal_gradients(tokenizer_dir, shards_dir, tmp_path):
    loss_off, off = _step_grads(tokenizer_dir, shards_dir, tmp_path / "off", 4, 1)
    loss_on, on = _step_grads(tokenizer_dir, shards_dir, tmp_path / "on", 4, 1,
                              gradient_checkpointing=True)
    assert loss_on == loss_off
    _assert_same_grads(off, on, atol=0)


def test_bf16_autocast_trains(tokenizer_dir, shards_dir, tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path, precision="bf16", max_steps=40,
                      micro_batch_size=8, eval_every=40, save_every=40)
    trainer = build_trainer(parse_config(cfg))
    first = trainer.train_step()["loss"]
    for _ in range(39):
        last = trainer.train_step()["loss"]
    assert last < first - 0.5, (first, last)
    # Parameters stay float32 (autocast computes in bf16, the optimizer updates fp32 masters).
    assert all(p.dtype == torch.float32 for p in trainer.raw_model.parameters())


def test_optimizers_and_schedule(tokenizer_dir, shards_dir, tmp_path):
    for name, lr in (("sgd", 0.3), ("rmsprop", 3e-3), ("adamw", 3e-3)):
        cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / name, max_steps=15)
        cfg["optimizer"] = {"name": name, "lr": lr}
        cfg["schedule"] = {"warmup_steps": 5, "min_lr_ratio": 0.1}
        trainer = build_trainer(parse_config(cfg))
        assert type(trainer.optimizer).__name__.lower() == name
        losses, lrs = [], []
        for _ in range(15):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
            losses.append(trainer.train_step()["loss"])
        assert losses[-1] < losses[0], (name, losses)
        assert lrs[0] == lr / 5 and max(lrs) == lr  # linear warmup to the peak
        assert abs(trainer.optimizer.param_groups[0]["lr"] - lr * 0.1) < 1e-12  # cosine floor
        assert lrs[5:] == sorted(lrs[5:], reverse=True)


def test_no_weight_decay_on_norms_and_biases(tokenizer_dir, shards_dir, tmp_path):
    trainer = build_trainer(parse_config(tiny_config(tokenizer_dir, shards_dir, tmp_path)))
    decay, no_decay = trainer.optimizer.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 1 for p in no_decay["params"])
    assert TINY_LLAMA["num_hidden_layers"] * 2 + 1 == len(no_decay["params"])  # the RMSNorms
