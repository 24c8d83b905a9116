"""Sampling: seeds reproduce per request whatever shares the batch; filters, penalties and
logprobs do what their definitions say."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import naive_greedy, random_prompts

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.sampler import Sampler, SampleRow


def seeded(seed: int, **kw) -> SamplingParams:
    return SamplingParams(max_tokens=24, temperature=1.0, seed=seed, ignore_eos=True, **kw)


def test_seeded_sampling_is_reproducible_whatever_the_batch(llama):
    prompt = random_prompts([8])[0]
    params = seeded(42, top_p=0.95, top_k=50)
    alone = Engine(llama, None).generate([prompt], params)[0].token_ids
    others = random_prompts([3, 19, 11, 5], seed=9)
    companions = [seeded(7), SamplingParams(max_tokens=30, temperature=1.2),
                  SamplingParams(max_tokens=10, temperature=0), seeded(42, min_p=0.1)]
    # Different batch sizes, positions, chunking and even preemption must not matter.
    for engine in (Engine(llama, None, block_size=8),
                   Engine(llama, None, block_size=4, max_num_batched_tokens=6),
                   Engine(llama, None, block_size=4, num_blocks=14)):
        outs = engine.generate(others[:2] + [prompt] + others[2:],
                               companions[:2] + [params] + companions[2:])
        assert outs[2].token_ids == alone
    assert Engine(llama, None).generate([prompt], seeded(43))[0].token_ids != alone


def test_degenerate_filters_are_greedy(llama):
    prompt = random_prompts([9], seed=3)[0]
    greedy = naive_greedy(llama, prompt, 12)
    for params in (seeded(1, top_k=1), seeded(2, top_p=1e-6), seeded(3, min_p=1.0)):
        params.max_tokens = 12
        assert Engine(llama, None).generate([prompt], params)[0].token_ids == greedy


def rows(n: int, **kw) -> list[SampleRow]:
    return [SampleRow(SamplingParams(**kw), [], [], None) for _ in range(n)]


def test_top_k_top_p_min_p_restrict_the_support():
    torch.manual_seed(0)
    logits = torch.randn(1, 50) * 3
    probs = logits.softmax(-1)[0]
    order = probs.argsort(descending=True)
    sampler = Sampler(50, seed=0)
    many = logits.expand(4000, 50)
    topk = set(sampler(many, rows(4000, top_k=5)).token_ids)
    assert topk <= set(order[:5].tolist()) and len(topk) == 5
    cum = probs[order].cumsum(0)
    nucleus = set(order[: int((cum < 0.7).sum()) + 1].tolist())
    assert set(sampler(many, rows(4000, top_p=0.7)).token_ids) == nucleus
    allowed = set((probs >= 0.2 * probs.max()).nonzero()[:, 0].tolist())
    assert set(sampler(many, rows(4000, min_p=0.2)).token_ids) == allowed


def test_sampling_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    tokens = Sampler(3, seed=1)(logits.expand(20000, 3), rows(20000)).token_ids
    freq = torch.bincount(torch.tensor(tokens), minlength=3).float() / len(tokens)
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.02)
    hot = Sampler(3, seed=1)(logits.expand(20000, 3), rows(20000, temperature=0.5)).token_ids
    assert torch.bincount(torch.tensor(hot))[0] / 20000 > 0.6  # sharper at low temperature


def test_penalties_follow_their_formulas():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    sampler = Sampler(4, seed=0)
    rep = SampleRow(SamplingParams(repetition_penalty=2.0, temperature=0), [0], [1], None)
    out = sampler._apply_penalties(logits.clone(), [rep])
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # seen tokens 0 and 1 pushed toward 0
    fp = SampleRow(SamplingParams(frequency_penalty=0.5, presence_penalty=1.0), [3], [2, 2, 0],
                   None)
    out = sampler._apply_penalties(logits.clone(), [fp])
    assert out.tolist() == [[0.5, -1.0, -1.5, 3.0]]  # 2 - 0.5 - 1; 0.5 - 2*0.5 - 1; prompt free
    # A strong repetition penalty steers greedy decoding away from what it already said.
    greedy = sampler(logits, [SampleRow(SamplingParams(temperature=0), [], [3], None)])
    penal = sampler(logits, [SampleRow(SamplingParams(temperature=0, presence_penalty=2.0),
                                       [], [3], None)])
    assert greedy.token_ids == [3] and penal.token_ids == [0]


def test_logprobs_are_the_models_own(llama):
    prompt = random_prompts([7], seed=6)[0]
    out = Engine(llama, None).generate([prompt], SamplingParams(
        max_tokens=5, temperature=0.7, seed=3, logprobs=3, ignore_eos=True))[0]
    assert len(out.logprobs) == 5
    ids = list(prompt)
    for token, entry in zip(out.token_ids, out.logprobs, strict=True):
        with torch.no_grad():
            ref = llama(torch.tensor([ids]))[0, -1].float().log_softmax(-1)
        assert entry["token_id"] == token
        assert entry["logprob"] == pytest.approx(ref[token].item(), abs=1e-4)
        top = entry["top_logprobs"]
        assert [t["token_id"] for t in top] == ref.topk(3).indices.tolist()
        assert [t["logprob"] for t in top] == pytest.approx(ref.topk(3).values.tolist(),
                                                            abs=1e-4)
        ids.append(token)


def test_invalid_params_name_the_field():
    for bad in ({"temperature": -1}, {"top_p": 0}, {"max_tokens": 0}, {"top_k": -2},
                {"logprobs": 99}, {"min_p": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SamplingParams(**bad)
    assert SamplingParams(stop="END").stop == ["END"]


def test_huge_top_k_is_clamped_to_the_vocabulary():
    # 2**63 does not fit in int64: building the batch's top-k tensor used to overflow.
    logits = torch.randn(2, 50)
    result = Sampler(50, seed=0)(logits, [SampleRow(SamplingParams(top_k=2**63), [], [], None),
                                          SampleRow(SamplingParams(top_k=3), [], [], None)])
    assert result.errors == [None, None] and all(0 <= t < 50 for t in result.token_ids)


def test_one_unusable_row_fails_alone():
    logits = torch.randn(3, 50)
    bad = SamplingParams(temperature=0.5)
    bad.min_p = "not a number"  # past validation, as a future bug might let through
    rows = [SampleRow(SamplingParams(temperature=0), [], [], None),
            SampleRow(bad, [], [], None),
            SampleRow(SamplingParams(temperature=0, logprobs=1), [], [], None)]
    result = Sampler(50, seed=0)(logits, rows)
    assert result.token_ids[1] == -1 and "min_p" not in (result.errors[0] or "")
    assert result.errors[0] is None and result.errors[2] is None and result.errors[1]
    assert [result.token_ids[0], result.token_ids[2]] == logits[[0, 2]].argmax(-1).tolist()
    assert result.logprobs[2] is not None


@pytest.mark.parametrize("temperature", [1e-46, 1e-30, 1e-6])
def test_tiny_temperatures_are_greedy(llama, temperature):
    # 1e-46 rounds to 0 in float32, 1e-30 overflows the logits: both once gave NaNs and token 0.
    prompt = random_prompts([9], seed=4)[0]
    params = SamplingParams(max_tokens=8, temperature=temperature, ignore_eos=True)
    assert params.greedy
    assert Engine(llama, None).generate([prompt], params)[0].token_ids == \
        naive_greedy(llama, prompt, 8)
