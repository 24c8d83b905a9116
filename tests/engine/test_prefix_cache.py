"""Automatic prefix caching: the allocator's reference counts and names, and an engine whose
outputs are the same with the cache as without it (greedy, batched, under preemption)."""

from __future__ import annotations

import pytest
from engine_helpers import naive_greedy, random_prompts, tiny_llama

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.paged_cache import BlockAllocator
from lmstack.engine.prefix_cache import PrefixCachingAllocator, block_hashes

BS = 4


def allocator(num_blocks: int = 9) -> PrefixCachingAllocator:
    return PrefixCachingAllocator(BlockAllocator(num_blocks), BS)


def test_names_chain_so_an_equal_block_after_a_different_prefix_is_not_a_hit():
    a = block_hashes([1, 2, 3, 4, 5, 6, 7, 8], BS)
    b = block_hashes([9, 9, 9, 9, 5, 6, 7, 8], BS)
    assert len(a) == 2 and a[1] != b[1]  # same tokens, different history
    assert block_hashes([1, 2, 3, 4, 5, 6, 7], BS) == a[:1]  # a partial block has no name
    assert block_hashes([1, 2, 3, 4], BS, salt="adapter-x") != a[:1]


def test_lookup_take_free_and_eviction():
    alloc = allocator(num_blocks=5)  # 4 usable
    tokens = list(range(1, 10))  # two full blocks and one token
    blocks = alloc.allocate(3)
    alloc.cache(blocks[:2], block_hashes(tokens, BS))
    alloc.free(blocks)  # the named two stay cached, the third goes back to the free list
    assert alloc.num_free == 4 and len(alloc.evictable) == 2
    hit, names = alloc.lookup(tokens)
    assert hit == blocks[:2] and len(names) == 2
    # Only len - 1 tokens may match: the last token must still run for its logits.
    assert alloc.lookup(tokens[:8])[0] == blocks[:1]
    alloc.take(hit, len(tokens))
    assert alloc.refs[hit[0]] == 1 and alloc.num_free == 2 and alloc.hit_rate == 8 / 9
    alloc.free(hit)
    # Four fresh blocks: two never-used ones, then the two cached ones, oldest first.
    assert sorted(alloc.allocate(4)) == sorted([*blocks[2:], 4, *blocks[:2]])
    assert alloc.lookup(tokens)[0] == []  # evicted blocks lose their names
    with pytest.raises(RuntimeError, match="double free"):
        alloc.free([blocks[0], blocks[0]])


def test_a_name_computed_twice_keeps_its_first_block():
    alloc = allocator()
    names = block_hashes([1, 2, 3, 4], BS)
    first, second = alloc.allocate(1), alloc.allocate(1)
    alloc.cache(first, names)
    alloc.cache(second, names)
    alloc.free(second)  # unnamed: straight back to the free list
    assert alloc.lookup([1, 2, 3, 4, 5])[0] == first and not alloc.evictable


def greedy(engine: Engine, prompts, n: int = 8):
    return [o.token_ids for o in engine.generate(prompts, SamplingParams(
        max_tokens=n, temperature=0, ignore_eos=True))]


def assert_all_blocks_released(engine: Engine):
    alloc = engine.cache.allocator
    assert not engine.has_unfinished()
    assert all(r == 0 for r in alloc.refs) and alloc.num_free == alloc.capacity


def test_shared_prefixes_reuse_blocks_and_outputs_match_no_cache():
    model = tiny_llama()
    system = random_prompts([37], seed=1)[0]
    prompts = [system + tail for tail in random_prompts([3, 9, 1, 14], seed=2)]
    cached = Engine(model, None, block_size=BS)
    plain = Engine(model, None, block_size=BS, enable_prefix_caching=False)
    first = greedy(cached, prompts[:1])  # fills the cache with the shared prefix
    assert cached.stats["prefix_cache_hits"] == 0
    together = greedy(cached, prompts)  # one batch: every prompt finds the prefix
    assert together == greedy(plain, prompts) and together[0] == first[0]
    assert together == [naive_greedy(model, p, 8) for p in prompts]
    # Each prompt reused the 36 cached tokens of its 37-token system prefix (9 blocks).
    assert cached.stats["prefix_cache_hits"] == 4 * 36
    assert cached.stats["prefill_tokens"] < plain.stats["prefill_tokens"]
    assert_all_blocks_released(cached)


def test_a_growing_conversation_recomputes_only_its_new_turn():
    model = tiny_llama()
    engine = Engine(model, None, block_size=BS)
    history = random_prompts([11], seed=3)[0]
    for turn in range(4):
        before = engine.stats["prefill_tokens"]
        reply = greedy(engine, [history], n=5)[0]
        assert reply == naive_greedy(model, history, 5)
        if turn:  # all but the last partial block of the history came from the cache
            assert engine.stats["prefill_tokens"] - before <= BS + 6
        history = history + reply + random_prompts([6], seed=10 + turn)[0]
    assert_all_blocks_released(engine)


def test_outputs_match_under_preemption():
    model = tiny_llama()
    system = random_prompts([20], seed=4)[0]
    prompts = [system + tail for tail in random_prompts([5, 7, 2, 9, 4, 6], seed=5)]
    # Room for about three sequences at a time: the rest are preempted and recomputed,
    # partly from cached blocks of their own earlier run.
    engine = Engine(model, None, block_size=BS, num_blocks=25)
    got = greedy(engine, prompts, n=24)
    assert engine.stats["preemptions"] > 0 and engine.stats["prefix_cache_hits"] > 0
    assert got == greedy(Engine(model, None, block_size=BS, enable_prefix_caching=False),
                         prompts, n=24)
    assert_all_blocks_released(engine)


def test_a_salt_keeps_caches_apart():
    model = tiny_llama()
    engine = Engine(model, None, block_size=BS)
    prompt = random_prompts([21], seed=6)[0]
    for salt in ("adapter-a", "adapter-b"):
        seq = engine.make_sequence(prompt, SamplingParams(max_tokens=2, temperature=0))
        seq.cache_salt = salt
        engine.add_sequence(seq)
        while engine.has_unfinished():
            engine.step()
    assert engine.stats["prefix_cache_hits"] == 0  # b did not read a's keys and values
