"""The engine's greedy output equals naive full-recompute decoding, however requests are
batched, chunked, interleaved or preempted."""

from __future__ import annotations

import pytest
import torch
import transformers
from engine_helpers import naive_greedy, peaky, random_prompts, tiny_llama

from lmstack.engine import Engine, SamplingParams
from lmstack.models import load_model

GREEDY64 = SamplingParams(max_tokens=64, temperature=0, ignore_eos=True)


def test_kv_cached_engine_matches_full_recompute(any_model):
    prompts = random_prompts([7, 23, 1])
    expected = [naive_greedy(any_model, p, 64) for p in prompts]
    for prompt, want in zip(prompts, expected, strict=True):
        out = Engine(any_model, None, block_size=4).generate([prompt], GREEDY64)[0]
        assert out.token_ids == want
        assert out.finish_reason == "length" and out.completion_tokens == 64


def test_matches_transformers_generate(tmp_path):
    torch.manual_seed(3)
    hf = peaky(transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)))
    hf.save_pretrained(tmp_path)
    prompt = random_prompts([12])[0]
    want = hf.generate(torch.tensor([prompt]), max_new_tokens=32, min_new_tokens=32,
                       do_sample=False)[0, 12:].tolist()
    engine = Engine(load_model(tmp_path), None)
    got = engine.generate([prompt], SamplingParams(max_tokens=32, temperature=0,
                                                   ignore_eos=True))[0]
    assert got.token_ids == want


def test_batched_and_continuous_equal_one_at_a_time(any_model):
    prompts = random_prompts([5, 17, 2, 40, 9, 31], seed=1)
    params = [SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)
              for n in (20, 35, 8, 30, 27, 12)]
    alone = [Engine(any_model, None).generate([p], sp)[0].token_ids
             for p, sp in zip(prompts, params, strict=True)]

    batched = Engine(any_model, None, block_size=8).generate(prompts, params)
    assert [o.token_ids for o in batched] == alone

    # Requests arrive while others decode; a small budget forces chunked prefill alongside.
    engine = Engine(any_model, None, block_size=4, max_num_batched_tokens=16, max_num_seqs=3)
    results: dict[str, list[int]] = {}
    ids = []
    for prompt, sp in zip(prompts, params, strict=True):
        ids.append(engine.add_request(prompt, sp))
        for _ in range(3):
            for out in engine.step():
                results.setdefault(out.request_id, []).extend(out.token_ids)
    while engine.has_unfinished():
        for out in engine.step():
            results.setdefault(out.request_id, []).extend(out.token_ids)
    assert [results[i] for i in ids] == alone
    assert engine.stats["free_blocks"] == engine.stats["total_blocks"]


def test_long_prompt_is_chunked_without_stalling_decodes(llama):
    engine = Engine(llama, None, max_num_batched_tokens=8, block_size=4)
    short = engine.add_request(random_prompts([3])[0], GREEDY64)
    engine.step()  # the short request is decoding now
    long_prompt = random_prompts([60], seed=5)[0]
    engine.add_request(long_prompt, SamplingParams(max_tokens=4, temperature=0))
    produced = 0
    for _ in range(7):  # 60 tokens take 8+ chunks at 7 tokens a step beside the decode
        produced += sum(len(o.token_ids) for o in engine.step() if o.request_id == short)
    assert produced == 7  # one token every step while the long prompt was being prefilled
    (out,) = engine.generate([long_prompt], GREEDY64)
    assert out.token_ids == naive_greedy(llama, long_prompt, 64)


def test_preemption_recomputes_and_still_matches(llama):
    prompts = random_prompts([10, 14, 6, 20], seed=2)
    alone = [naive_greedy(llama, p, 40) for p in prompts]
    # 16 usable blocks of 4 tokens hold ~64 tokens: far fewer than 4 sequences of ~55 need.
    engine = Engine(llama, None, block_size=4, num_blocks=17)
    outs = engine.generate(prompts, SamplingParams(max_tokens=40, temperature=0,
                                                   ignore_eos=True))
    assert [o.token_ids for o in outs] == alone
    assert engine.stats["preemptions"] > 0
    assert engine.stats["free_blocks"] == 16


def test_token_reads_match_tile_reads(llama):
    prompts = random_prompts([5, 19, 33], seed=7)
    tiles = Engine(llama, None, block_size=8)
    tokens = Engine(llama, None, block_size=8)
    tokens.cache.tile_reads = False  # what sliding-window models and odd context sizes use
    want = [o.token_ids for o in tiles.generate(prompts, GREEDY64)]
    assert [o.token_ids for o in tokens.generate(prompts, GREEDY64)] == want


def test_sliding_window_model_matches_recompute():
    model = tiny_llama(model_type="mistral", sliding_window=8)
    prompt = random_prompts([13], seed=4)[0]
    out = Engine(model, None, block_size=4).generate([prompt], SamplingParams(
        max_tokens=24, temperature=0, ignore_eos=True))[0]
    assert out.token_ids == naive_greedy(model, prompt, 24)


def test_eos_stops_and_context_limit_ends_with_length(llama):
    prompt = random_prompts([6])[0]
    first = naive_greedy(llama, prompt, 5)
    llama.config.eos_token_id = first[3]
    try:
        out = Engine(llama, None).generate([prompt], SamplingParams(max_tokens=50,
                                                                    temperature=0))[0]
        assert out.finish_reason == "stop" and out.token_ids == first[:4]
        ignored = Engine(llama, None).generate([prompt], SamplingParams(
            max_tokens=6, temperature=0, ignore_eos=True))[0]
        assert ignored.token_ids[:5] == first and ignored.finish_reason == "length"
    finally:
        llama.config.eos_token_id = None
    stopped = Engine(llama, None).generate([prompt], SamplingParams(
        max_tokens=50, temperature=0, stop_token_ids=[first[2]]))[0]
    assert stopped.token_ids == first[:3] and stopped.finish_reason == "stop"
    short = Engine(llama, None, max_model_len=10).generate([prompt], GREEDY64)[0]
    assert short.completion_tokens == 4 and short.finish_reason == "length"


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_half_precision_runs(dtype):
    model = tiny_llama().to(dtype)
    out = Engine(model, None).generate(random_prompts([5, 9]), SamplingParams(
        max_tokens=8, temperature=0.8, top_p=0.9, seed=1))
    assert all(len(o.token_ids) == 8 for o in out)
