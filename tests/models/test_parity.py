"""Parity with transformers: same weights in, same logits and greedy tokens out, both ways."""

from __future__ import annotations

import pytest
import torch
import transformers

from lmstack.models import load_model
from lmstack.models.generate import generate

torch.manual_seed(0)

LLAMA = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "max_position_embeddings": 256}

CASES = {
    "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=128, n_positions=128, n_embd=64, n_layer=2, n_head=4)),
    "llama-mha": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **LLAMA, num_key_value_heads=4)),
    "llama-gqa": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **LLAMA, num_key_value_heads=2)),
    "llama-mqa": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **LLAMA, num_key_value_heads=1)),
    "llama3-rope-scaling": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **LLAMA, num_key_value_heads=2, rope_theta=500000.0, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    "llama-linear-rope": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **LLAMA, num_key_value_heads=2, rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "qwen2-tied-bias": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        **LLAMA, num_key_value_heads=2, tie_word_embeddings=True)),
    "mistral-sliding": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(
        **LLAMA, num_key_value_heads=2, sliding_window=8)),
}


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    """HF inits norms to 1 and biases to 0; perturb everything so no weight goes untested."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def padded_batch(vocab: int):
    ids = torch.randint(0, vocab, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding
    mask[2, 5:] = 0
    return ids, mask


@pytest.fixture(scope="module", params=sorted(CASES))
def pair(request, tmp_path_factory):
    torch.manual_seed(1)
    hf = _randomise(CASES[request.param]())
    folder = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(folder)
    return request.param, hf, load_model(folder), folder


def test_logits_match_on_padded_batch(pair):
    name, hf, ours, _ = pair
    ids, mask = padded_batch(hf.config.vocab_size)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask)
    real = mask.bool()
    diff = (ref - got)[real].abs().max().item()
    assert diff < 1e-4, f"{name}: max |logits diff| {diff}"


def test_greedy_32_tokens_match(pair):
    name, hf, ours, _ = pair
    prompt = torch.randint(0, hf.config.vocab_size, (1, 7))
    ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32,
                      do_sample=False, min_new_tokens=32, pad_token_id=0)
    got = generate(ours, prompt, max_new_tokens=32)
    assert got.tolist() == ref.tolist(), name


def test_save_roundtrips_into_transformers(pair, tmp_path):
    name, hf, ours, _ = pair
    ours.save_pretrained(tmp_path)
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids, mask = padded_batch(hf.config.vocab_size)
    with torch.no_grad():
        diff = (back(input_ids=ids, attention_mask=mask).logits - ours(ids, mask))
    assert diff[mask.bool()].abs().max().item() < 1e-4, name
    assert type(back) is type(hf)


def test_a_transposed_weight_breaks_parity(pair):
    """The tests above must be able to fail: corrupt one square tensor and watch them notice."""
    name, hf, _, folder = pair
    broken = load_model(folder)
    square = next(p for n, p in broken.named_parameters()
                  if p.ndim == 2 and p.shape[0] == p.shape[1] and "embed" not in n)
    with torch.no_grad():
        square.copy_(square.t().clone())
    ids, mask = padded_batch(hf.config.vocab_size)
    with torch.no_grad():
        diff = (hf(input_ids=ids, attention_mask=mask).logits - broken(ids, mask))
    assert diff[mask.bool()].abs().max().item() > 1e-3, name
