"""GGUF export: tiny Llama/Qwen2 models with a trained tokenizer, written by lmstack, read back
by `gguf`, re-imported by lmstack and loaded by transformers with equal logits."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader

import lmstack
from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.models import gguf_export as export_module
from lmstack.models.gguf_export import export_gguf
from lmstack.models.gguf_quants import dequantize, quantize
from lmstack.tokenizer import train_bpe_from_iterator

PROMPT = "The module holds parameters and buffers"


def tiny_tokenizer():
    texts = [inspect.getdoc(o) or "" for o in (torch.nn.Module, np.ndarray, dict, list, str)]
    return train_bpe_from_iterator(texts * 3, vocab_size=384, show_progress=False)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def tiny(tokenizer, model_type="llama", **overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        model_type=model_type, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rope_theta=5000.0, **overrides)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms start at one and biases at zero: move them so all are tested
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def logits(model, tokenizer) -> torch.Tensor:
    with torch.inference_mode():
        out = model(torch.tensor([tokenizer.encode(PROMPT)]))
    return getattr(out, "logits", out)


def transformers_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                dtype=torch.float32).eval()


@pytest.mark.parametrize("type_, model_type, tie", [
    ("f32", "llama", False), ("f16", "llama", True), ("f32", "qwen2", True),
])
def test_round_trip_and_transformers_parity(tmp_path, tokenizer, type_, model_type, tie):
    model = tiny(tokenizer, model_type, tie_word_embeddings=tie)
    path = export_gguf(model, tokenizer, tmp_path / "m.gguf", type_)
    reader = GGUFReader(path)
    names = {t.name for t in reader.tensors}
    assert ("output.weight" in names) != tie
    assert reader.fields["general.architecture"].contents() == model_type
    ours, tok = lmstack.load(path)
    assert (ours.config.model_type, ours.config.tie_word_embeddings) == (model_type, tie)
    if type_ == "f32":  # exact weights back
        torch.testing.assert_close(logits(ours, tok), logits(model, tokenizer), atol=0, rtol=0)
    torch.testing.assert_close(logits(transformers_model(path), tok), logits(ours, tok),
                               atol=1e-5, rtol=0)


def test_a_missing_rotary_permutation_is_caught(tmp_path, tokenizer, monkeypatch):
    """The deliberate break: q/k rows written in HF order load in transformers with the wrong
    rotary pairing, so its logits move away from ours."""
    model = tiny(tokenizer)
    monkeypatch.setattr(export_module, "rotary_permute", lambda w, n_head, inverse=False: w)
    path = export_gguf(model, tokenizer, tmp_path / "m.gguf", "f32")
    diff = (logits(transformers_model(path), tokenizer) - logits(model, tokenizer)).abs().max()
    assert diff > 1e-3


@pytest.mark.parametrize("type_, qtype", [("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1)])
def test_quantized_export_reads_back(tmp_path, tokenizer, type_, qtype):
    model = tiny(tokenizer)
    path = export_gguf(model, tokenizer, tmp_path / "m.gguf", type_)
    types = {t.name: t.tensor_type for t in GGUFReader(path).tensors}
    assert types["blk.0.attn_q.weight"] == types["output.weight"] == qtype
    assert types["blk.0.attn_norm.weight"] == Q.F32  # 1-D tensors stay float32
    ours, _ = lmstack.load(path)
    for name in ("model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight"):
        w = model.state_dict()[name].numpy()
        expected = dequantize(quantize(w, qtype), qtype, w.shape)  # whole rows move, not values
        assert np.array_equal(ours.state_dict()[name].numpy(), expected)


def test_tokenizer_and_chat_template_survive(tmp_path, tokenizer):
    path = export_gguf(tiny(tokenizer), tokenizer, tmp_path / "m.gguf", "f16")
    _, back = lmstack.load(path)
    text = "Return a new dict <|im_end|> 你好 🤗"
    assert back.encode(text) == tokenizer.encode(text)
    assert back.all_special_tokens == tokenizer.all_special_tokens
    messages = [{"role": "user", "content": "hi"}]
    assert back.apply_chat_template(messages, add_generation_prompt=True) == \
        tokenizer.apply_chat_template(messages, add_generation_prompt=True)


def test_llama3_rope_scaling_travels_as_rope_freqs(tmp_path, tokenizer):
    """Llama 3.x stores its rope scaling as a divisor per frequency; with head_dim 16, theta
    5000 and an original context of 600, the divisors are 1 (x3), two blends, then 8 (x3)."""
    from lmstack.models.gguf import GGUFError, llama3_scaling

    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 600}
    model = tiny(tokenizer, rope_scaling=scaling)
    path = export_gguf(model, tokenizer, tmp_path / "m.gguf", "f32")
    (freqs,) = [t for t in GGUFReader(path).tensors if t.name == "rope_freqs.weight"]
    assert freqs.data.min() == 1.0 and freqs.data.max() == 8.0 and len(set(freqs.data)) > 3
    ours, tok = lmstack.load(path)
    assert ours.config.rope_scaling == scaling
    torch.testing.assert_close(logits(ours, tok), logits(model, tokenizer), atol=0, rtol=0)
    with pytest.raises(GGUFError, match="matches no Llama-3 rope scaling"):
        llama3_scaling(np.full(8, 3.0, np.float32), 16, 5000.0, 600)
