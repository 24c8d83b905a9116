"""Houlsby bottleneck adapters: a fresh one leaves the logits exactly as they were; a few
training steps move only the adapters (the base stays bit-identical) and change the output."""

from __future__ import annotations

import pytest
import torch

from lmstack import load
from lmstack.adapt.bottleneck import adapter_state_dict, apply_bottleneck


def test_fresh_bottleneck_is_identity_then_trains_alone(folder, ids, train):
    model = load(folder)[0]
    with torch.no_grad():
        base = model(ids)
    apply_bottleneck(model, bottleneck_size=8)
    assert len(adapter_state_dict(model)) == 2 * 2 * 4  # 2 layers x (attn, mlp) x 4 tensors
    with torch.no_grad():
        torch.testing.assert_close(model(ids), base, atol=0, rtol=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, ids)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) == (".adapter." not in name), name
    with torch.no_grad():
        assert (model(ids) - base).abs().max() > 1e-3
    with pytest.raises(ValueError, match="matches"):
        apply_bottleneck(load(folder)[0], ["no_such_block"])
