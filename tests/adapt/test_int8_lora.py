"""LoRA on a frozen int8 base (QLoRA-style): per-channel int8 is within half a step of the
float weights; a fresh LoRA changes nothing; training moves only the float LoRA factors (the
int8 weights stay bit-identical); a merge into int8 is refused; the engine serves it."""

from __future__ import annotations

import pytest
import torch

from lmstack import load
from lmstack.adapt.int8 import Int8Linear, apply_qlora, quantize_int8
from lmstack.adapt.lora import lora_layers, merge
from lmstack.engine import Engine, SamplingParams
from lmstack.models.generate import generate


def test_int8_weights_are_within_half_a_step(folder):
    model = load(folder)[0]
    q = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    quantize_int8(model)
    layer = model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, Int8Linear) and layer.qweight.dtype == torch.int8
    error = (layer.weight - q).abs().amax(dim=1)
    assert (error <= layer.scale / 2 + 1e-7).all() and error.max() > 0
    assert type(model.lm_head) is torch.nn.Linear  # the head stays float


def test_qlora_identity_training_and_refused_merge(folder, ids, train):
    model = quantize_int8(load(folder)[0])
    with torch.no_grad():
        base = model(ids)
    model = apply_qlora(load(folder)[0], ("q_proj", "v_proj"), r=4, alpha=8)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), base, atol=0, rtol=0)
    before = {n: t.detach().clone() for n, t in model.state_dict().items()}
    train(model, ids)
    for name, t in model.state_dict().items():
        assert torch.equal(t, before[name]) == (".lora_" not in name), name
    with pytest.raises(ValueError, match="int8"):
        merge(model)
    assert not any(layer.merged for layer in lora_layers(model).values())


def test_engine_serves_an_int8_lora_model(folder):
    model = apply_qlora(load(folder)[0], r=4, alpha=8).eval()
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.weight.normal_(0, 0.5)
    prompt = [5, 17, 3, 9]
    want = generate(model, torch.tensor([prompt]), 6)[0, 4:].tolist()
    engine = Engine(model, None, max_num_seqs=2, column_major=True)  # fuses what it can
    out = engine.generate([prompt], SamplingParams(max_tokens=6, temperature=0))[0]
    assert out.token_ids == want
