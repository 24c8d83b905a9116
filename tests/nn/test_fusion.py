"""Fused q/k/v and gate/up projections: same outputs and state as the separate layers, and a
fall-back to them whenever the stack could be stale or gradients are wanted."""

from __future__ import annotations

import pytest
import torch

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.nn.fusion import fuse_projections, pack_weights

CONFIG = {"vocab_size": 97, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def model(model_type: str = "llama") -> LlamaForCausalLM:
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(model_type=model_type, **CONFIG)).eval()
    with torch.no_grad():  # qwen2's q/k/v biases start at zero: make them count
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    return m


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
@pytest.mark.parametrize("column_major", [False, True])
def test_fused_forward_equals_separate_layers(model_type, column_major):
    m = model(model_type)
    ids = torch.randint(0, 97, (2, 9))
    with torch.inference_mode():
        want = m(ids)
        state = {k: v.clone() for k, v in m.state_dict().items()}
        assert fuse_projections(m, column_major) == 4  # 2 layers x (attention, mlp)
        got = m(ids)
    torch.testing.assert_close(got, want)
    assert m.state_dict().keys() == state.keys()
    for k, v in m.state_dict().items():  # same names, shapes and values: saving is unchanged
        assert torch.equal(v, state[k]), k


def test_stale_or_trainable_stack_is_not_used():
    m = model()
    ids = torch.randint(0, 97, (1, 5))
    fuse_projections(m)
    attn = m.model.layers[0].self_attn
    with torch.inference_mode():
        assert attn.qkv.usable(attn.q_proj, attn.k_proj, attn.v_proj)
    assert not attn.qkv.usable(attn.q_proj, attn.k_proj, attn.v_proj)  # gradients wanted
    m.double()  # re-stores every weight: the stack is stale
    with torch.inference_mode():
        assert not attn.qkv.usable(attn.q_proj, attn.k_proj, attn.v_proj)
        assert m(ids).dtype == torch.float64
    loss = m.float()(ids).sum()
    loss.backward()  # gradients reach the layers' own weights
    assert attn.q_proj.weight.grad is not None


def test_packed_weights_give_the_same_logits_and_state():
    m = model().to(torch.bfloat16)
    ids = torch.randint(0, 97, (2, 9))
    with torch.inference_mode():
        want = m(ids)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    fuse_projections(m)
    if pack_weights(m) == 0:
        pytest.skip("no oneDNN weight packing in this torch build")
    assert isinstance(m.lm_head, torch.nn.Linear)  # still one, with the same parameters
    with torch.inference_mode():
        got = m(ids)
    assert torch.equal(got, want)  # the same oneDNN kernel F.linear uses, minus the reorder
    assert all(torch.equal(v, state[k]) for k, v in m.state_dict().items())


def test_packed_copy_is_dropped_once_the_weight_changes():
    m = model().to(torch.bfloat16)
    fuse_projections(m)
    if pack_weights(m) == 0:
        pytest.skip("no oneDNN weight packing in this torch build")
    other = model().to(torch.bfloat16)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.5)
    m.load_state_dict(other.state_dict())  # copies in place: pointers stay, versions move
    ids = torch.randint(0, 97, (1, 7))
    with torch.inference_mode():
        assert torch.equal(m(ids), other(ids))
