"""ONNX export: onnxruntime runs the exported decoder (optimum's KV-cache layout) with logits
within 1e-4 of lmstack's, with and without a past, and the same greedy tokens; int8 too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.models.generate import generate
from lmstack.quant.onnx_export import export_folder, export_onnx, past_names, present_names

ort = pytest.importorskip("onnxruntime", reason="the dev extra installs onnxruntime")
from lmstack.quant.onnx_runtime import OnnxDecoderSession, logit_gap

PROMPT, EXTRA = [5, 17, 42, 8, 99, 3, 250], [77, 12, 6]


def tiny_llama(**overrides) -> LlamaForCausalLM:
    """2 layers, hidden 64, grouped-query heads; weights large enough for decisive argmaxes."""
    torch.manual_seed(0)
    cfg = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 256, "initializer_range": 0.2, **overrides}
    return LlamaForCausalLM(LlamaConfig(**cfg)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_llama()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return model, path, OnnxDecoderSession(path, threads=1)


def test_graph_has_optimums_kv_cache_layout(exported):
    _, _, session = exported
    names = [i.name for i in session.session.get_inputs()]
    assert names == ["input_ids", "attention_mask", "position_ids", *past_names(2)]
    outputs = [o.name for o in session.session.get_outputs()]
    assert outputs == ["logits", *present_names(2)]
    assert (session.kv_heads, session.head_dim) == (2, 16)


def test_logits_match_lmstack_with_and_without_past(exported):
    model, _, session = exported
    assert logit_gap(model, session, PROMPT, EXTRA) < 1e-4
    assert logit_gap(model, session, PROMPT[:1], EXTRA[:1]) < 1e-4  # 1 token, then decode


def test_a_perturbed_weight_is_caught(exported):
    _, _, session = exported
    broken = tiny_llama()
    with torch.no_grad():
        broken.model.layers[1].mlp.down_proj.weight[0, 0] += 0.05
    assert logit_gap(broken, session, PROMPT, EXTRA) > 1e-4


def test_greedy_tokens_equal_lmstack_generate(exported):
    model, _, session = exported
    want = generate(model, torch.tensor([PROMPT]), 24)[0, len(PROMPT):].tolist()
    assert session.greedy(PROMPT, 24) == want


def test_qwen2_biases_and_batches_export_too(tmp_path):
    model = tiny_llama(model_type="qwen2", num_key_value_heads=4)
    session = OnnxDecoderSession(export_onnx(model, tmp_path / "m.onnx"), threads=1)
    ids = np.array([PROMPT, PROMPT[::-1]])
    logits, present = session.forward(ids, session.empty_past(batch=2))
    with torch.no_grad():
        want = model(torch.tensor(ids)).numpy()
    assert np.abs(logits - want).max() < 1e-4
    assert present[0].shape == (2, 4, len(PROMPT), 16)


def test_int8_is_smaller_and_close(exported, tmp_path):
    model, _, _ = exported
    fp32, int8 = export_folder(model, None, tmp_path, int8=True)
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    session = OnnxDecoderSession(int8, threads=1)
    gap = logit_gap(model, session, PROMPT, EXTRA)
    assert 1e-4 < gap < 0.1 * np.abs(model(torch.tensor([PROMPT])).detach().numpy()).max()
    assert (tmp_path / "config.json").is_file()
