"""Fixtures for the adapter tests: tiny random HF Llama (GQA: 4 query heads, 2 kv heads) and
GPT-2 folders that both transformers+PEFT and lmstack's hub loader read, a batch of token ids,
and a few training steps."""

from __future__ import annotations

import pytest
import torch
import transformers


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    path = tmp_path_factory.mktemp("llama")
    hf.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory):
    """A tiny random GPT-2: Conv1D projections, learned positions, fused c_attn."""
    torch.manual_seed(5)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=96, n_positions=64, n_embd=32, n_layer=2, n_head=4))
    path = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(path)
    return path


@pytest.fixture
def ids():
    return torch.randint(0, 96, (2, 10), generator=torch.Generator().manual_seed(3))


@pytest.fixture
def train():
    """A few AdamW steps of next-token loss on `tokens`, over the parameters that want
    gradients (what every adapter method leaves trainable)."""
    def run(model, tokens, steps: int = 3) -> None:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=1e-2)
        for _ in range(steps):
            logits = model(tokens[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return run
