"""Continuous batching: which sequences run this step, how many tokens each, and who is evicted.

Follows vLLM V1 and nano-vllm (Yu et al. 2022, "Orca" for iteration-level scheduling): one
token budget per step, running requests first, chunked prefill, preemption by recomputation.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch

from lmstack.engine.detokenizer import IncrementalDetokenizer, StopChecker
from lmstack.engine.paged_cache import BlockAllocator
from lmstack.engine.params import SamplingParams
from lmstack.engine.prefix_cache import PrefixCachingAllocator, block_hashes


class Status(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """One request's tokens, cache blocks and streaming state."""

    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    detokenizer: IncrementalDetokenizer
    stop: StopChecker
    generator: torch.Generator | None = None
    output_ids: list[int] = field(default_factory=list)
    num_computed: int = 0  # tokens whose keys and values are in the cache
    block_table: list[int] = field(default_factory=list)
    # Prefix caching: names of the full blocks in block_table, in order, and what besides
    # the tokens shapes this sequence's keys and values (e.g. its LoRA adapter).
    block_names: list[bytes] = field(default_factory=list)
    cache_salt: str | None = None
    guide: Any = None  # a JsonGuide when the output must match a JSON Schema
    status: Status = Status.WAITING
    finish_reason: str | None = None
    error: str | None = None  # why it was ended alone (its own parameters failed)
    arrival_time: float = field(default_factory=time.perf_counter)
    first_token_time: float | None = None
    # What the next RequestOutput will report (cleared when it is sent).
    new_text: str = ""
    new_token_ids: list[int] = field(default_factory=list)
    new_logprobs: list[dict] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.output_ids)

    def tokens(self, start: int, end: int) -> list[int]:
        """Tokens start..end-1 of prompt + output, without building the concatenation."""
        p = len(self.prompt_ids)
        if start >= p:
            return self.output_ids[start - p:end - p]
        return self.prompt_ids[start:end] + self.output_ids[:max(0, end - p)]

    @property
    def finished(self) -> bool:
        return self.status is Status.FINISHED


class Scheduler:
    """Owns the waiting queue and the running batch; hands out and takes back KV blocks."""

    def __init__(self, allocator: BlockAllocator | PrefixCachingAllocator, block_size: int,
                 max_num_seqs: int, max_num_batched_tokens: int):
        self.allocator, self.block_size = allocator, block_size
        self.prefix_caching = isinstance(allocator, PrefixCachingAllocator)
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def schedule(self) -> list[tuple[Sequence, int]]:
        """[(sequence, tokens to compute this step)], running sequences first.

        A running sequence needs one token (decode) or the next chunk of its prompt; if its
        blocks cannot grow, the newest running sequence is preempted (blocks freed, recomputed
        later) until they can. Waiting sequences are admitted, oldest first, while budget,
        batch slots and free blocks last; a long prompt is cut to what the budget allows.
        """
        budget = self.max_num_batched_tokens
        batch: list[tuple[Sequence, int]] = []
        preempted = False
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_tokens - seq.num_computed, budget)
            need = self.blocks_for(seq.num_computed + n) - len(seq.block_table)
            while need > self.allocator.num_free and seq.status is Status.RUNNING:
                self._preempt(self.running[-1])
                preempted = True
            if seq.status is not Status.RUNNING:
                break  # it was the newest itself, and is now back in the queue
            seq.block_table += self.allocator.allocate(max(0, need))
            batch.append((seq, n))
            budget -= n
            i += 1
        # vLLM's rule: after a preemption nothing new joins, or it would be evicted next.
        while (self.waiting and budget > 0 and not preempted
               and len(self.running) < self.max_num_seqs):
            seq = self.waiting[0]
            hit, names = [], []
            if self.prefix_caching:  # a waiting sequence holds no blocks and has computed none
                hit, names = self.allocator.lookup(seq.tokens(0, seq.num_tokens),
                                                   seq.cache_salt)
            computed = len(hit) * self.block_size
            n = min(seq.num_tokens - computed, budget)
            need = self.blocks_for(computed + n) - len(hit)
            if need + (self.allocator.cost(hit) if hit else 0) > self.allocator.num_free:
                break
            self.waiting.popleft()
            if self.prefix_caching:
                self.allocator.take(hit, seq.num_tokens)
            seq.block_table, seq.block_names = hit + self.allocator.allocate(need), names
            seq.num_computed = computed
            seq.status = Status.RUNNING
            self.running.append(seq)
            batch.append((seq, n))
            budget -= n
        return batch

    def computed(self, seq: Sequence, n: int) -> None:
        """n more of seq's tokens are in the cache; name any block they filled."""
        seq.num_computed += n
        full = seq.num_computed // self.block_size
        done = len(seq.block_names)
        if self.prefix_caching and full > done:
            parent = seq.block_names[-1] if done else None
            names = block_hashes(seq.tokens(done * self.block_size, full * self.block_size),
                                 self.block_size, seq.cache_salt, parent)
            seq.block_names += names
            self.allocator.cache(seq.block_table[done:full], names)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self._release(seq)
        seq.num_computed = 0
        seq.status = Status.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def _release(self, seq: Sequence) -> None:
        self.allocator.free(seq.block_table)
        seq.block_table, seq.block_names = [], []

    def finish(self, seq: Sequence, reason: str) -> None:
        """Mark finished and give its blocks back at once."""
        if seq.status is Status.RUNNING:
            self.running.remove(seq)
        elif seq.status is Status.WAITING:
            self.waiting.remove(seq)
        self._release(seq)
        seq.status, seq.finish_reason = Status.FINISHED, reason

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)
