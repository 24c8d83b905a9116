"""Objectives and evaluation: MLM + NSP trains, perplexity scores each token exactly once."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from train_helpers import TINY_LLAMA

from lmstack.data import NSPPairs, SpecialIds, build_nsp_examples
from lmstack.evals import perplexity
from lmstack.models import BertConfig, BertForPreTraining, LlamaConfig, LlamaForCausalLM
from lmstack.train import MaskedLM, Trainer, parse_config


def test_mlm_nsp_pretraining_loss_falls(tmp_path):
    g = torch.Generator().manual_seed(0)
    # Each document repeats its own small "topic" vocabulary, so NSP is learnable.
    docs = []
    for d in range(40):
        topic = torch.randint(10, 200, (8,), generator=g)
        docs.append([topic[torch.randint(0, 8, (6,), generator=g)].tolist() for _ in range(12)])
    special = SpecialIds(cls=1, sep=2, mask=3, pad=0, vocab_size=200)
    data = NSPPairs(build_nsp_examples(docs, 48, seed=0), 48, special)
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64,
                                          max_position_embeddings=64))
    cfg = parse_config({"model": {"architecture": "BertForPreTraining",
                                  "config": {"hidden_size": 32}},
                        "objective": {"name": "mlm_nsp"},
                        "data": {"files": ["unused.txt"], "seq_len": 48},
                        "optimizer": {"lr": 3e-3}, "schedule": {"warmup_steps": 5},
                        "training": {"micro_batch_size": 16, "max_steps": 40, "threads": 2,
                                     "out_dir": str(tmp_path), "progress": False}})
    trainer = Trainer(model, MaskedLM(nsp=True), data, cfg)
    stats = [trainer.train_step() for _ in range(40)]
    first = sum(s["loss_lm"] for s in stats[:5]) / 5
    last = sum(s["loss_lm"] for s in stats[-5:]) / 5
    assert last < first - 0.3, (first, last)
    assert {"loss_lm", "loss_nsp"} <= set(stats[0])


def test_perplexity_scores_each_token_once():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, **TINY_LLAMA)).eval()
    ids = torch.randint(0, 50, (300,))
    with torch.no_grad():
        whole = F.cross_entropy(model(ids[None, :-1])[0], ids[1:]).item()
    one_window = perplexity(model, ids, seq_len=400)
    assert one_window["tokens"] == 299 and abs(one_window["loss"] - whole) < 1e-5
    assert abs(one_window["ppl"] - math.exp(whole)) < 1e-3
    for stride in (16, 32, 64):
        assert perplexity(model, ids, seq_len=64, stride=stride, batch_size=3)["tokens"] == 299
