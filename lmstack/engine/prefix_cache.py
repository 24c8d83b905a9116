"""Automatic prefix caching: full KV blocks found again by the tokens that filled them.

Follows vLLM's automatic prefix caching (V1's KVCacheManager). A block that a sequence has
filled completely is named by a hash of its tokens chained to the hash of the block before it,
so equal names mean equal tokens at equal positions from the start: equal keys and values.
A new request whose first blocks' names are known reuses those blocks instead of computing
them: a chat's growing history, a shared system prompt, a RAG prompt's fixed instructions.

Blocks are reference-counted. When the last sequence using a named block lets go, the block
keeps its contents and joins a least-recently-used list; it counts as free, and is only
overwritten (its name forgotten) when the free list runs dry. The hash is a cryptographic one
(blake2b), as vLLM moved to: with a plain 64-bit hash, a crafted prompt could collide with
another user's block and read its keys and values.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict

from lmstack.engine.paged_cache import BlockAllocator


def block_hashes(tokens: list[int], block_size: int, salt: str | None = None,
                 parent: bytes | None = None) -> list[bytes]:
    """Chained names of the full blocks of `tokens` (a trailing partial block has none).

    parent is the name of the block just before tokens[0]; None means tokens start the
    sequence, and `salt` seeds the chain instead: anything besides the tokens that changes
    the keys and values, such as a LoRA adapter, belongs there.
    """
    if parent is None:
        parent = hashlib.blake2b((salt or "").encode(), digest_size=16).digest()
    names = []
    for b in range(len(tokens) // block_size):
        chunk = array("q", tokens[b * block_size:(b + 1) * block_size]).tobytes()
        parent = hashlib.blake2b(parent + chunk, digest_size=16).digest()
        names.append(parent)
    return names


class PrefixCachingAllocator:
    """A BlockAllocator with reference counts and a name -> block table of reusable blocks.

    Same interface as BlockAllocator (allocate, free, num_free, capacity), so the scheduler
    and the engine's capacity checks are unchanged; `lookup`, `take` and `cache` add reuse.
    """

    def __init__(self, allocator: BlockAllocator, block_size: int):
        self.inner, self.block_size = allocator, block_size
        self.refs = [0] * allocator.num_blocks
        self.name_of: dict[int, bytes] = {}  # block -> its name, for blocks in the table
        self.block_of: dict[bytes, int] = {}  # name -> block
        self.evictable: OrderedDict[int, None] = OrderedDict()  # named, unused; oldest first
        self.queried_tokens = 0  # prompt tokens looked up ...
        self.hit_tokens = 0  # ... and found

    @property
    def num_free(self) -> int:
        return self.inner.num_free + len(self.evictable)

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    @property
    def num_blocks(self) -> int:
        return self.inner.num_blocks

    def allocate(self, n: int) -> list[int]:
        """n blocks for new tokens: never-used ones first, then the least recently used."""
        if n > self.num_free:
            raise RuntimeError(f"asked for {n} KV blocks but only {self.num_free} are free")
        fresh = self.inner.allocate(min(n, self.inner.num_free))
        while len(fresh) < n:
            block, _ = self.evictable.popitem(last=False)
            del self.block_of[self.name_of.pop(block)]  # its contents are about to change
            fresh.append(block)
        for b in fresh:
            self.refs[b] = 1
        return fresh

    def free(self, blocks: list[int]) -> None:
        """Let go of blocks; named ones stay cached until their space is needed."""
        if len(set(blocks)) != len(blocks) or not all(
                0 < b < len(self.refs) and self.refs[b] > 0 for b in blocks):
            raise RuntimeError(f"freeing KV blocks {blocks}, some of which are not held "
                               "(a double free): the scheduler's bookkeeping is broken")
        # Reversed: a sequence's last blocks are the least likely to be shared, so they are
        # evicted before its first ones.
        for b in reversed(blocks):
            self.refs[b] -= 1
            if self.refs[b] == 0:
                if b in self.name_of:
                    self.evictable[b] = None
                else:
                    self.inner.free([b])

    def lookup(self, tokens: list[int], salt: str | None = None
               ) -> tuple[list[int], list[bytes]]:
        """Cached blocks holding the longest known prefix of `tokens`, and their names.

        Nothing is taken yet (see take). At most len(tokens) - 1 tokens are matched: the last
        one must run through the model anyway, for the logits the next token is sampled from.
        """
        blocks, names = [], []
        for name in block_hashes(tokens[:len(tokens) - 1], self.block_size, salt):
            block = self.block_of.get(name)
            if block is None:
                break
            blocks.append(block)
            names.append(name)
        return blocks, names

    def cost(self, blocks: list[int]) -> int:
        """How many free blocks taking `blocks` uses up (those cached but unused)."""
        return sum(1 for b in blocks if self.refs[b] == 0)

    def take(self, blocks: list[int], num_tokens: int) -> None:
        """Hold the blocks `lookup` found for a request of num_tokens tokens (for the rate)."""
        for b in blocks:
            if self.refs[b] == 0:
                del self.evictable[b]
            self.refs[b] += 1
        self.queried_tokens += num_tokens
        self.hit_tokens += len(blocks) * self.block_size

    def cache(self, blocks: list[int], names: list[bytes]) -> None:
        """Name newly filled blocks (names[i] for blocks[i]) so others can reuse them. A name
        already cached elsewhere (two requests computed the same prefix at once) keeps its
        block; this copy stays private and is freed normally."""
        for block, name in zip(blocks, names, strict=True):
            if name not in self.block_of and block not in self.name_of:
                self.block_of[name] = block
                self.name_of[block] = name

    @property
    def hit_rate(self) -> float:
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0
