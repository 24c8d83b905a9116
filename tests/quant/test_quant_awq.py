"""AWQ's rescaling leaves the float model's function unchanged, and its chosen scales quantize
the layers no worse than plain rounding on the calibration activations."""

from __future__ import annotations

import copy

import torch

from lmstack.quant.apply import quantize_weight
from lmstack.quant.awq import apply_awq, collect_inputs, scaling_groups, search_scale

IDS = torch.randint(0, 320, (4, 32), generator=torch.Generator().manual_seed(0))


def test_rescaling_keeps_the_float_model_and_changes_its_weights(tiny_llama):
    # give one input channel large activations, as trained models have
    with torch.no_grad():
        tiny_llama.model.layers[0].input_layernorm.weight[5] = 20.0
        before = tiny_llama(IDS)
    original = copy.deepcopy(tiny_llama)
    apply_awq(tiny_llama, list(IDS.split(2)), group=32)
    with torch.no_grad():
        after = tiny_llama(IDS)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    q_before = original.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(tiny_llama.model.layers[0].self_attn.q_proj.weight, q_before)


def test_searched_scale_beats_or_ties_plain_rounding(tiny_llama):
    with torch.no_grad():
        tiny_llama.model.layers[0].input_layernorm.weight[5] = 20.0
    layers, _ = scaling_groups(tiny_llama)[0]
    x = collect_inputs(tiny_llama, [layers[0]], [IDS])[layers[0]]

    def error(s):
        return sum(((x / s) @ quantize_weight(lin.weight * s, "int4", 32).dequantize().T
                    - x @ lin.weight.T).pow(2).sum() for lin in layers)

    s = search_scale(layers, x, 32, symmetric=False)
    assert error(s) <= error(torch.ones_like(s))
    assert s[5] > s.median()  # the loud channel got the finer steps
