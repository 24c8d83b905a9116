"""Per-choice log-likelihoods equal token log-probs summed directly with transformers, with the
continuation tokens taken as the whole string tokenizes them (lm-evaluation-harness's split)."""

from __future__ import annotations

import pytest
import torch

from lmstack.evals import encode_pair, loglikelihoods

PAIRS = [  # (context, continuation): boundaries at a space, a trailing space, and none at all
    ("Question: What is the capital of France?\nAnswer:", " Paris"),
    ("Question: Which gas do plants take in?\nAnswer: ", "carbon dioxide"),
    ("The answer is breathing", " mask, not safety goggles"),
    ("水在标准大气压下的沸点是", "一百度"),
]


@torch.no_grad()
def reference(hf_model, tok, context: str, continuation: str) -> float:
    """Tokenize the whole string once; the continuation is every token past those of the
    (space-stripped) context; sum its log-probs from transformers' own forward pass."""
    stripped = context.rstrip()
    whole = tok.encode(context + continuation, add_special_tokens=False)
    n_ctx = len(tok.encode(stripped, add_special_tokens=False))
    if not stripped:  # no context: condition on the prefix token, as the harness does
        whole, n_ctx = [tok.bos_token_id or tok.eos_token_id] + whole, 1
    logp = torch.log_softmax(hf_model(torch.tensor([whole])).logits[0].double(), -1)
    return sum(float(logp[p - 1, whole[p]]) for p in range(n_ctx, len(whole)))


@pytest.mark.parametrize("share_prefix", [True, False])
def test_loglikelihoods_match_transformers(tiny, hf_model, share_prefix):
    model, tok = tiny
    requests = [encode_pair(tok, c, x) for c, x in PAIRS] * 2  # repeats share a context
    got = loglikelihoods(model, requests, share_prefix=share_prefix, batch_tokens=40)
    want = [reference(hf_model, tok, c, x) for c, x in PAIRS] * 2
    assert [g for g, _ in got] == pytest.approx(want, abs=1e-4)
    assert all(isinstance(greedy, bool) for _, greedy in got)


def test_four_choices_of_one_question_share_the_context_and_agree(tiny, hf_model):
    model, tok = tiny
    context = "Question: Which gas do plants take in?\nAnswer:"
    choices = [" carbon dioxide", " Paris", " mask", " 一百度"]
    requests = [encode_pair(tok, context, c) for c in choices]
    shared = loglikelihoods(model, requests)
    plain = loglikelihoods(model, requests, share_prefix=False)
    want = [reference(hf_model, tok, context, c) for c in choices]
    assert [s for s, _ in shared] == pytest.approx(want, abs=1e-4)
    assert [s for s, _ in plain] == pytest.approx(want, abs=1e-4)


def test_the_trailing_space_moves_onto_the_continuation(tiny):
    _, tok = tiny
    ctx, cont = encode_pair(tok, "Answer: ", "Paris")
    assert ctx == tok.encode("Answer:", add_special_tokens=False)
    assert ctx + cont == tok.encode("Answer: Paris", add_special_tokens=False)


def test_the_classic_off_by_one_is_caught(tiny, hf_model):
    """The deliberate break: tokenizing context and continuation apart (the space becomes its
    own token) scores different tokens, and the parity check above would fail on it."""
    model, tok = tiny
    context, continuation = "Question: Which gas do plants take in?\nAnswer: ", "carbon dioxide"
    naive = (tok.encode(context, add_special_tokens=False),
             tok.encode(continuation, add_special_tokens=False))
    assert naive != encode_pair(tok, context, continuation)
    (got, _), = loglikelihoods(model, [naive])
    assert abs(got - reference(hf_model, tok, context, continuation)) > 1e-2


def test_left_truncation_keeps_the_last_tokens(tiny, hf_model):
    model, tok = tiny
    ctx, cont = encode_pair(tok, *PAIRS[0])
    limit = len(ctx) + len(cont) - 4  # four context tokens fall off the left
    (got, _), = loglikelihoods(model, [(ctx, cont)], max_length=limit)
    inputs = (ctx + cont)[-(limit + 1):]
    with torch.no_grad():
        logp = torch.log_softmax(hf_model(torch.tensor([inputs[:-1]])).logits[0].double(), -1)
    want = sum(float(logp[p - 1, inputs[p]]) for p in range(len(inputs) - len(cont), len(inputs)))
    assert got == pytest.approx(want, abs=1e-4)


def test_an_empty_continuation_is_a_clear_error(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="continuation"):
        loglikelihoods(model, [([1, 2], [])])
