"""Speculative decoding by prompt lookup: the proposer, the greedy check, and an engine whose
greedy outputs are the same tokens with speculation as without."""

from __future__ import annotations

import torch
from engine_helpers import naive_greedy, random_prompts, tiny_llama

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.speculative import propose_ngram, verify_greedy
from lmstack.tokenizer.chat_prompt import chat_prompt_ids


def test_propose_continues_the_latest_earlier_occurrence():
    tokens = [5, 6, 7, 1, 2, 5, 6, 8, 9, 5, 6]
    assert propose_ngram(tokens, k=2) == [8, 9]  # "5 6" last seen before "8 9"
    assert propose_ngram([1, 2, 3, 1, 2, 3, 4, 1, 2, 3], k=3, max_n=3) == [4, 1, 2]
    assert propose_ngram([1, 2, 3, 4], k=3) == []  # nothing repeats
    assert propose_ngram([7, 7], k=4) == [7]  # only what exists after the match


def test_verify_keeps_the_agreeing_prefix_and_adds_the_models_own_token():
    def one_hot(ids):  # logits whose argmax at row i is ids[i]
        return torch.nn.functional.one_hot(torch.tensor(ids), 10).float()

    assert verify_greedy([3, 4, 5], one_hot([3, 4, 5, 6])) == [3, 4, 5, 6]  # all kept + bonus
    assert verify_greedy([3, 4, 5], one_hot([3, 9, 5, 6])) == [3, 9]  # cut at the first miss
    assert verify_greedy([3], one_hot([8, 1])) == [8]


def test_rejected_guesses_leave_greedy_outputs_unchanged():
    model = tiny_llama()
    # Repeating prompts give prompt lookup plenty to propose; a random model rejects nearly
    # all of it, so this checks that rejected guesses' keys and values never leak.
    base = random_prompts([6], seed=7)[0]
    prompts = [base * 4, random_prompts([9], seed=8)[0], base * 2 + [3]]
    params = SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    plain = Engine(model, None, block_size=4)
    spec = Engine(model, None, block_size=4, speculative_tokens=4)
    expected = [o.token_ids for o in plain.generate(prompts, params)]
    for p, want in zip(prompts, expected, strict=True):  # one at a time: batch-1 speculation
        assert spec.generate([p], params)[0].token_ids == want
    assert expected[0] == naive_greedy(model, prompts[0], 40)
    assert spec.stats["speculative_proposed"] > 0
    alloc = spec.cache.allocator
    assert all(r == 0 for r in alloc.refs) and alloc.num_free == alloc.capacity


def test_sampled_requests_do_not_speculate():
    model = tiny_llama()
    spec = Engine(model, None, block_size=4, speculative_tokens=4, seed=0)
    prompt = random_prompts([6], seed=7)[0] * 4
    spec.generate([prompt], SamplingParams(max_tokens=20, temperature=0.8, seed=1))
    assert spec.stats["speculative_proposed"] == 0


def test_smollm2_copying_a_sentence_keeps_guesses_and_saves_steps(smollm2):
    model, tokenizer, _ = smollm2
    prompt = chat_prompt_ids(tokenizer, [{"role": "user", "content": (
        "Repeat this sentence exactly: The quick brown fox jumps over the lazy dog.")}])
    params = SamplingParams(max_tokens=16, temperature=0)
    plain = Engine(model, tokenizer)
    spec = Engine(model, tokenizer, speculative_tokens=4)
    want = plain.generate([prompt], params)[0]
    got = spec.generate([prompt], params)[0]
    assert got.token_ids == want.token_ids and "lazy dog" in got.text
    assert spec.stats["speculative_accepted"] > 0
    assert spec.stats["steps"] < plain.stats["steps"]  # kept guesses saved forward passes
