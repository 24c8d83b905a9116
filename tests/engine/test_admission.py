"""Admission control and cancellation: refuse what can never fit, queue what fits later, and
give blocks back the moment a request is aborted."""

from __future__ import annotations

import pytest
from engine_helpers import random_prompts

from lmstack.engine import Engine, EngineFullError, SamplingParams

LONG = SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)


def test_abort_frees_blocks_at_once(llama):
    engine = Engine(llama, None, block_size=4, num_blocks=65)
    rids = [engine.add_request(p, LONG) for p in random_prompts([10, 20, 5])]
    for _ in range(5):
        engine.step()
    before = engine.stats["free_blocks"]
    assert before < 64 and engine.stats["running"] == 3
    engine.abort(rids[1])
    assert engine.stats["free_blocks"] == before + -(-(20 + 4) // 4)  # its 24 tokens' blocks
    assert engine.stats["running"] == 2
    outs = engine.step()
    aborted = [o for o in outs if o.request_id == rids[1]]
    assert aborted and aborted[0].finished and aborted[0].finish_reason == "abort"
    engine.abort(rids[1])  # twice, or an unknown id: harmless
    engine.abort("no-such-request")
    for rid in (rids[0], rids[2]):
        engine.abort(rid)
    engine.step()
    assert engine.stats["free_blocks"] == 64 and not engine.has_unfinished()


def test_abort_while_waiting(llama):
    engine = Engine(llama, None, max_num_seqs=1)
    first = engine.add_request([1, 2, 3], LONG)
    second = engine.add_request([4, 5, 6], LONG)
    engine.step()
    assert engine.stats["waiting"] == 1
    engine.abort(second)
    assert engine.stats["waiting"] == 0
    assert [o.finish_reason for o in engine.step() if o.request_id == second] == ["abort"]
    engine.abort(first)


def test_refuses_what_can_never_fit(llama):
    engine = Engine(llama, None, block_size=4, num_blocks=11)  # 40 tokens of cache
    with pytest.raises(EngineFullError, match="num_blocks"):
        engine.add_request(random_prompts([30])[0], SamplingParams(max_tokens=20))
    # Exactly the capacity is fine: the last sampled token never needs a cache slot.
    engine.add_request(random_prompts([30])[0], SamplingParams(max_tokens=11))
    with pytest.raises(ValueError, match="context"):
        engine.add_request(list(range(256)), SamplingParams())
    with pytest.raises(ValueError, match="empty"):
        engine.add_request([], SamplingParams())
    with pytest.raises(ValueError, match="token ids"):
        engine.add_request([10_000], SamplingParams())
    with pytest.raises(ValueError, match="tokenizer"):
        engine.add_request("text needs a tokenizer", SamplingParams())
    assert engine.stats["waiting"] == 1  # nothing half-added
    assert issubclass(EngineFullError, ValueError)


def test_more_work_than_cache_is_queued_and_finishes(llama):
    engine = Engine(llama, None, block_size=4, num_blocks=21, max_num_seqs=8)
    prompts = random_prompts([12] * 10, seed=3)
    outs = engine.generate(prompts, SamplingParams(max_tokens=30, temperature=0,
                                                   ignore_eos=True))
    assert all(o.completion_tokens == 30 for o in outs)
    assert engine.stats["free_blocks"] == 20


def test_queue_limit_and_duplicate_ids(llama):
    engine = Engine(llama, None, max_queue=2)
    engine.add_request([1, 2], SamplingParams(), request_id="a")
    with pytest.raises(ValueError, match="already in use"):
        engine.add_request([1, 2], SamplingParams(), request_id="a")
    engine.add_request([1, 2], SamplingParams())
    with pytest.raises(EngineFullError, match="waiting"):
        engine.add_request([1, 2], SamplingParams())


def test_abort_while_preempted_gives_back_nothing_twice(llama):
    engine = Engine(llama, None, block_size=4, num_blocks=17)  # 64 tokens for ~4 x 50
    params = SamplingParams(max_tokens=30, temperature=0, ignore_eos=True)
    rids = [engine.add_request(p, params) for p in random_prompts([10, 14, 6, 20], seed=2)]
    while engine.stats["preemptions"] == 0:
        engine.step()
    preempted = [s for s in engine.scheduler.waiting if s.output_ids]
    assert preempted and not preempted[0].block_table
    engine.abort(preempted[0].request_id)
    for rid in rids:
        engine.abort(rid)
    engine.step()
    assert engine.stats["free_blocks"] == 16 and not engine.has_unfinished()


def test_a_context_longer_than_the_models_positions_is_refused(llama):
    # Not only for GPT-2's learned table: past its trained positions any model degrades.
    with pytest.raises(ValueError, match="has 256 positions.*lower max_model_len"):
        Engine(llama, None, max_model_len=257)
