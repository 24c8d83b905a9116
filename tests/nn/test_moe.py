"""The mixture-of-experts feed-forward: top-k routing, Switch's balancing loss (against
transformers' Mixtral), capacity, and the loss reaching a Llama's training objective."""

from __future__ import annotations

import pytest
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.nn.moe import MoEFeedForward, expert_capacity, load_balancing_loss, moe_aux_loss
from lmstack.train.objectives import CausalLM


def moe(n_experts=4, k=2, capacity_factor=1.25) -> MoEFeedForward:
    torch.manual_seed(0)
    return MoEFeedForward(16, 32, n_experts, k, capacity_factor)


def tokens_seen_by_each_expert(layer: MoEFeedForward, x: torch.Tensor) -> list[int]:
    seen = []
    hooks = [e.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
             for e in layer.experts]
    layer(x)
    for h in hooks:
        h.remove()
    return seen


@torch.no_grad()
def test_each_token_is_the_weighted_sum_of_its_top_k_experts():
    layer = moe().eval()
    x = torch.randn(2, 5, 16)
    tokens = x.reshape(-1, 16)
    probs = layer.gate(tokens).softmax(-1)
    want = torch.zeros_like(tokens)
    for n, token in enumerate(tokens):  # the reference: one token at a time, no batching tricks
        w, idx = probs[n].topk(2)
        for weight, e in zip(w / w.sum(), idx.tolist(), strict=True):
            want[n] += weight * layer.experts[e](token[None])[0]
    torch.testing.assert_close(layer(x).reshape(-1, 16), want, atol=1e-6, rtol=1e-5)
    # k = 2 assignments per token, every one run at inference (no capacity there).
    assert sum(tokens_seen_by_each_expert(layer, x)) == 2 * len(tokens)


def test_balancing_loss_is_one_for_a_uniform_router_and_grows_with_collapse():
    layer = moe().train()
    with torch.no_grad():
        layer.gate.weight.zero_()  # every expert equally likely for every token
    layer(torch.randn(3, 7, 16))
    assert layer.aux_loss.item() == pytest.approx(1.0, abs=1e-6)  # Switch's minimum
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.weight[0] = 1.0  # expert 0 wins everywhere: the router has collapsed
    layer(torch.rand(3, 7, 16) + 1)  # positive inputs, so expert 0's logit is the largest
    assert layer.aux_loss.item() > 1.5


def test_balancing_loss_matches_mixtral_up_to_its_factor_k():
    torch.manual_seed(1)
    logits = torch.randn(40, 8)
    probs = logits.softmax(-1)
    for k in (1, 2, 3):
        ours = load_balancing_loss(probs, probs.topk(k, dim=-1).indices)
        theirs = load_balancing_loss_func((logits,), num_experts=8, top_k=k)
        torch.testing.assert_close(ours * k, theirs, atol=1e-6, rtol=1e-6)


def test_capacity_caps_each_expert_in_training_only():
    layer = moe(capacity_factor=0.5)
    x = torch.randn(4, 8, 16)
    cap = expert_capacity(32, 4, 2, 0.5)
    assert cap == 8  # half the fair share of 32 tokens × 2 assignments over 4 experts
    assert max(tokens_seen_by_each_expert(layer.train(), x)) <= cap
    assert sum(tokens_seen_by_each_expert(layer.eval(), x)) == 64  # nothing dropped


def test_aux_loss_reaches_the_causal_lm_objective_in_training_only():
    torch.manual_seed(0)
    cfg = {"vocab_size": 50, "hidden_size": 16, "intermediate_size": 16,
           "num_hidden_layers": 2, "num_attention_heads": 2, "n_experts": 4,
           "experts_per_token": 2, "moe_aux_loss_coef": 0.5,
           "moe_capacity_factor": 0}  # no cap: training and eval forwards route alike
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    assert LlamaConfig(**cfg).to_dict()["n_experts"] == 4
    assert "n_experts" not in LlamaConfig(vocab_size=50).to_dict()  # dense: HF's keys only
    batch = {"input_ids": torch.randint(0, 50, (2, 9))}
    ce = torch.nn.functional.cross_entropy(
        model(batch["input_ids"][:, :-1]).flatten(0, 1), batch["input_ids"][:, 1:].flatten(),
        reduction="sum")
    model.train()
    loss, count = CausalLM()(model, batch)["lm"]
    aux = moe_aux_loss(model)
    assert aux is not None and aux.item() >= 0.5 * 1.0 - 1e-6  # coef × (≥ 1 per layer)
    torch.testing.assert_close(loss, ce + aux * count)
    model.eval()
    loss, _ = CausalLM()(model, batch)["lm"]
    torch.testing.assert_close(loss, ce)  # validation stays pure cross-entropy
