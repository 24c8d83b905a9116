"""Continuous batching: which sequences run this step, how many tokens each, and who is evicted.

Follows vLLM V1 and nano-vllm (Yu et al. 2022, "Orca" for iteration-level scheduling): one
token budget per step, running requests first, chunked prefill, preemption by recomputation.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import torch

from lmstack.engine.detokenizer import IncrementalDetokenizer, StopChecker
from lmstack.engine.paged_cache import BlockAllocator
from lmstack.engine.params import SamplingParams


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

    def __init__(self, allocator: BlockAllocator, block_size: int, max_num_seqs: int,
                 max_num_batched_tokens: int):
        self.allocator, self.block_size = allocator, block_size
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
            n = min(seq.num_tokens - seq.num_computed, budget)
            need = self.blocks_for(seq.num_computed + n) - len(seq.block_table)
            if need > self.allocator.num_free:
                break
            self.waiting.popleft()
            seq.block_table += self.allocator.allocate(need)
            seq.status = Status.RUNNING
            self.running.append(seq)
            batch.append((seq, n))
            budget -= n
        return batch

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self._release(seq)
        seq.num_computed = 0
        seq.status = Status.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def _release(self, seq: Sequence) -> None:
        self.allocator.free(seq.block_table)
        seq.block_table = []

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
