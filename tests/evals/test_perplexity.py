"""Strided perplexity equals an independent per-token reference: token p scored once, from the
context the strided windows give it, each by its own forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from lmstack.evals import perplexity
from lmstack.models import LlamaConfig, LlamaForCausalLM

SEQ_LEN, N, VOCAB = 48, 160, 50


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)).eval()
    with torch.no_grad():  # large weights: predictions depend strongly on the context
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8)
    return model


def context_start(p: int, stride: int) -> int:
    """Where the context of target position p begins: the first window whose targets reach p
    (window k reads ids[k*stride : k*stride + SEQ_LEN] and predicts up to k*stride + SEQ_LEN)."""
    return stride * max(0, math.ceil((p - SEQ_LEN) / stride))


@torch.no_grad()
def reference_nll(model, ids: torch.Tensor, start_of) -> list[float]:
    """-log p(ids[p] | ids[start_of(p):p]) for every p >= 1, one forward pass per token."""
    out = []
    for p in range(1, len(ids)):
        logits = model(ids[None, start_of(p):p])[0, -1]
        out.append(-torch.log_softmax(logits.double(), -1)[ids[p]].item())
    return out


@pytest.mark.parametrize("stride", [16, 48])
def test_strided_perplexity_matches_a_per_token_reference(model, stride):
    ids = torch.randint(0, VOCAB, (N,), generator=torch.Generator().manual_seed(1))
    want = reference_nll(model, ids, lambda p: context_start(p, stride))
    got = perplexity(model, ids, seq_len=SEQ_LEN, stride=stride, batch_size=3)
    assert got["tokens"] == N - 1
    assert got["nll_sum"] == pytest.approx(sum(want), rel=1e-5)
    assert got["loss"] == pytest.approx(sum(want) / (N - 1), rel=1e-5)
    assert got["ppl"] == pytest.approx(math.exp(sum(want) / (N - 1)), rel=1e-5)
    # The reference can tell contexts apart: full context (no windows) scores differently.
    full = reference_nll(model, ids, lambda p: 0)
    assert abs(sum(full) - sum(want)) > 1e-3 * abs(sum(want))
