"""Pruning: magnitude masks equal torch.nn.utils.prune's L1 pruning, the cubic schedule is Zhu &
Gupta's, and structured pruning's smaller model computes exactly what the masked one does."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch.nn.utils import prune as torch_prune

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.quant.prune import cubic_sparsity, magnitude_mask, prune_magnitude
from lmstack.quant.structured import (
    keep_channels,
    keep_heads,
    mask_channels,
    mask_heads,
    shrink,
)


def tiny_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = {"vocab_size": 120, "hidden_size": 64, "intermediate_size": 96,
           "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
           "initializer_range": 0.2, **overrides}
    return LlamaForCausalLM(LlamaConfig(**cfg)).eval()


IDS = torch.randint(0, 120, (2, 11), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.7])
def test_magnitude_mask_equals_torch_l1_unstructured(amount):
    layer = torch.nn.Linear(40, 30)
    ours = magnitude_mask(layer.weight, amount)
    torch_prune.l1_unstructured(layer, "weight", amount=amount)
    assert torch.equal(ours, layer.weight_mask.bool())


def test_cubic_schedule_is_zhu_and_gupta():
    assert cubic_sparsity(0, 0.8, begin=10, end=110) == 0.0
    assert cubic_sparsity(10, 0.8, begin=10, end=110) == 0.0
    assert cubic_sparsity(60, 0.8, begin=10, end=110) == pytest.approx(0.8 * (1 - 0.5 ** 3))
    assert cubic_sparsity(110, 0.8, begin=10, end=110) == pytest.approx(0.8)
    assert cubic_sparsity(500, 0.8, begin=10, end=110) == pytest.approx(0.8)
    values = [cubic_sparsity(t, 0.8, 10, 110) for t in range(10, 111)]
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert all(s > 0 for s in steps) and steps[0] > steps[-1]  # fast first, slow at the end


def test_one_shot_pruning_hits_each_matrix_and_spares_embeddings():
    model = tiny_llama()
    pruner = prune_magnitude(model, 0.5)
    assert len(pruner.weights) == 2 * 7  # q k v o gate up down, per layer
    assert pruner.sparsity() == pytest.approx(0.5, abs=1e-3)
    assert (model.model.embed_tokens.weight != 0).all()


@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("method", ["heads", "channels"])
def test_shrunk_model_equals_masked_model(method, calibrated):
    model = tiny_llama(model_type="qwen2")  # q, k, v biases: the q bias must shrink too
    calibration = IDS if calibrated else None
    keep = (keep_heads if method == "heads" else keep_channels)(model, 0.5, calibration)
    masked = copy.deepcopy(model)
    (mask_heads if method == "heads" else mask_channels)(masked, keep)
    small = shrink(model, **{method: keep})
    with torch.no_grad():
        want, got = masked(IDS), small(IDS)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        assert (want - model(IDS)).abs().max() > 1e-2  # pruning did change the model
    assert small.num_parameters() < model.num_parameters()
    if method == "heads":
        assert small.config.num_attention_heads == 4  # 2 of 4 per kv group
        assert small.model.layers[0].self_attn.q_proj.weight.shape == (4 * 8, 64)
    else:
        assert small.model.layers[1].mlp.down_proj.weight.shape == (64, 48)


def test_shrinking_the_wrong_heads_is_caught():
    model = tiny_llama()
    keep = keep_heads(model, 0.5)
    masked = copy.deepcopy(model)
    mask_heads(masked, keep)
    # The dropped heads instead of the kept ones: as many per group, so the shapes still fit.
    wrong = [torch.tensor(sorted(set(range(8)) - set(k.tolist()))) for k in keep]
    with torch.no_grad():
        assert (shrink(model, heads=wrong)(IDS) - masked(IDS)).abs().max() > 1e-3


def test_calibrated_scores_keep_the_channel_with_massive_activations():
    model = tiny_llama()
    with torch.no_grad():
        layer = model.model.layers[0]
        layer.post_attention_layernorm.weight[5] = 100.0  # hidden dim 5 arrives huge
        gate, up = layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight
        gate[:, 5] = up[:, 5] = 0.0  # ... and only channel 7 reads it, through small rows
        gate[7], up[7] = 0.0, 0.0
        gate[7, 5] = up[7, 5] = 0.1
    assert 7 not in keep_channels(model, 0.5)[0].tolist()  # weights alone rank it last
    assert 7 in keep_channels(model, 0.5, IDS)[0].tolist()


def test_bad_fractions_say_what_is_wrong():
    model = tiny_llama()
    with pytest.raises(ValueError, match="all 4 query heads"):
        keep_heads(model, 0.95)
    with pytest.raises(ValueError, match="between 0 and 1"):
        keep_channels(model, 1.5)
