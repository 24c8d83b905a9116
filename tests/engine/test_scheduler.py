"""The continuous-batching scheduler on its own: budget, batch cap, block bookkeeping,
preemption order and aborts, driven the way the engine drives it (no model)."""

from __future__ import annotations

import random

from lmstack.engine.detokenizer import IncrementalDetokenizer, StopChecker
from lmstack.engine.paged_cache import BlockAllocator
from lmstack.engine.params import SamplingParams
from lmstack.engine.scheduler import Scheduler, Sequence, Status


def seq(name: str, prompt_len: int) -> Sequence:
    ids = list(range(1, prompt_len + 1))
    return Sequence(name, ids, SamplingParams(max_tokens=64),
                    IncrementalDetokenizer(None, ids), StopChecker([]))


def run(scheduler: Scheduler) -> list[tuple[Sequence, int]]:
    """One engine step without the model: compute the scheduled tokens, sample a token where
    a sequence's prompt (or recompute) is complete."""
    batch = scheduler.schedule()
    for s, n in batch:
        s.num_computed += n
        if s.num_computed == s.num_tokens:
            s.output_ids.append(7)
    return batch


def assert_blocks_conserved(scheduler: Scheduler) -> None:
    held = [b for s in scheduler.running for b in s.block_table]
    assert len(held) == len(set(held)), "a block is in two block tables"
    assert all(not s.block_table for s in scheduler.waiting)
    assert scheduler.allocator.num_free + len(held) == scheduler.allocator.capacity
    for s in scheduler.running:  # each table covers exactly the computed tokens
        assert len(s.block_table) == -(-s.num_computed // scheduler.block_size)


def test_budget_chunks_a_long_prompt_and_running_sequences_go_first():
    sched = Scheduler(BlockAllocator(64), block_size=4, max_num_seqs=8,
                      max_num_batched_tokens=10)
    short, long = seq("short", 3), seq("long", 25)
    sched.add(short)
    sched.add(long)
    assert [(s.request_id, n) for s, n in run(sched)] == [("short", 3), ("long", 7)]
    # From now on the decoding sequence comes first and takes one token of the budget.
    assert [(s.request_id, n) for s, n in run(sched)] == [("short", 1), ("long", 9)]
    assert [(s.request_id, n) for s, n in run(sched)] == [("short", 1), ("long", 9)]
    assert long.output_ids == [7]  # 7 + 9 + 9 = 25: the prompt is complete
    assert_blocks_conserved(sched)


def test_max_num_seqs_caps_the_running_batch():
    sched = Scheduler(BlockAllocator(64), block_size=4, max_num_seqs=2,
                      max_num_batched_tokens=100)
    seqs = [seq(str(i), 5) for i in range(4)]
    for s in seqs:
        sched.add(s)
    for _ in range(3):
        assert {s.request_id for s, _ in run(sched)} == {"0", "1"}
        assert len(sched.running) == 2 and len(sched.waiting) == 2
    sched.finish(seqs[0], "stop")
    assert {s.request_id for s, _ in run(sched)} == {"1", "2"}
    assert_blocks_conserved(sched)


def test_preemption_evicts_the_newest_and_admits_nothing_that_step():
    # 6 usable blocks of 4 tokens: three 7-token prompts fill them; the 9th token needs more.
    sched = Scheduler(BlockAllocator(7), block_size=4, max_num_seqs=8,
                      max_num_batched_tokens=100)
    a, b, c = seq("a", 7), seq("b", 7), seq("c", 7)
    for s in (a, b, c):
        sched.add(s)
    run(sched)  # prefill all three: 2 blocks each, none left
    run(sched)  # decode token 8: still inside the second blocks
    late = seq("late", 1)
    sched.add(late)
    batch = run(sched)  # token 9 needs a third block each: "c", the newest, makes room
    assert [s.request_id for s, _ in batch] == ["a", "b"]
    assert sched.num_preemptions == 1
    assert list(sched.waiting) == [c, late]  # back at the front, before newer arrivals
    assert c.status is Status.WAITING and c.num_computed == 0 and c.block_table == []
    assert c.output_ids == [7, 7]  # kept: recomputation replays prompt and output
    assert_blocks_conserved(sched)


def test_abort_while_preempted_frees_nothing_twice():
    sched = Scheduler(BlockAllocator(7), block_size=4, max_num_seqs=8,
                      max_num_batched_tokens=100)
    seqs = [seq(n, 7) for n in "abc"]
    for s in seqs:
        sched.add(s)
    for _ in range(3):
        run(sched)
    preempted = seqs[2]
    assert preempted.status is Status.WAITING and sched.num_preemptions == 1
    sched.finish(preempted, "abort")  # must not free its (already returned) blocks again
    assert preempted.finished and preempted not in sched.waiting
    assert_blocks_conserved(sched)
    while sched.has_unfinished():
        for s, _ in run(sched):
            if len(s.output_ids) >= 6:
                sched.finish(s, "length")
    assert sched.allocator.num_free == sched.allocator.capacity


def test_blocks_are_conserved_under_random_traffic():
    rng = random.Random(0)
    sched = Scheduler(BlockAllocator(24), block_size=4, max_num_seqs=5,
                      max_num_batched_tokens=12)
    for i in range(200):
        if rng.random() < 0.3:
            sched.add(seq(str(i), rng.randint(1, 30)))
        for s, _ in run(sched):
            if s.status is Status.RUNNING and rng.random() < 0.1:
                sched.finish(s, "stop")
        if sched.waiting and rng.random() < 0.05:
            sched.finish(rng.choice(list(sched.waiting)), "abort")
        assert_blocks_conserved(sched)
    assert sched.num_preemptions > 0  # the traffic did exercise eviction
