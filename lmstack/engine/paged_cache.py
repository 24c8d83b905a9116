"""A paged key/value cache: fixed-size blocks handed out on demand, one block table per sequence.

Follows Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with
PagedAttention" (vLLM), in plain torch: each step gathers a batch's blocks into a padded view.
"""

from __future__ import annotations

import torch
from torch import Tensor

NULL_BLOCK = 0  # never handed out: padding reads and writes land here


class BlockAllocator:
    """A free list of block ids. Block 0 is reserved as the null block."""

    def __init__(self, num_blocks: int):
        if num_blocks < 2:
            raise ValueError("the KV cache needs at least 2 blocks (one is reserved)")
        self.num_blocks = num_blocks
        # Popping from the end hands out low ids first, which keeps small runs compact.
        self._free = list(range(num_blocks - 1, NULL_BLOCK, -1))

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def capacity(self) -> int:
        """Blocks a single sequence could ever hold (all but the null block)."""
        return self.num_blocks - 1

    def allocate(self, n: int) -> list[int]:
        if n > len(self._free):
            raise RuntimeError(f"asked for {n} KV blocks but only {len(self._free)} are free")
        taken = self._free[len(self._free) - n:]
        del self._free[len(self._free) - n:]
        return taken[::-1]

    def free(self, blocks: list[int]) -> None:
        self._free.extend(reversed(blocks))


class PagedKVCache:
    """Per-layer key and value storage, block-major: [num_blocks, kv_heads, block_size, d].

    Token `pos` of a sequence lives in block block_table[pos // block_size] at offset
    pos % block_size. One block of one head is a contiguous [block_size, d] tile, so reading a
    sequence's cache is a gather of whole tiles, not of single rows. Between steps the cache
    only stores; `prepare` turns one step's batch into a `BatchView`, the object the model's
    attention layers talk to through the KVCache protocol.
    """

    def __init__(
        self, num_layers: int, num_blocks: int, block_size: int, num_kv_heads: int,
        head_dim: int, dtype: torch.dtype = torch.float32, device=None,
        tile_reads: bool = True,
    ):
        self.num_layers, self.block_size = num_layers, block_size
        self.num_kv_heads, self.head_dim = num_kv_heads, head_dim
        # Tile reads leave the unused tail of each sequence's last block inside the keys it
        # attends over (masked); a sliding-window mask counts from the last key column and
        # would then be off, so such models read token by token instead.
        self.tile_reads = tile_reads
        # Zeroed: masked-out keys still enter the attention arithmetic (times a zero weight),
        # and uninitialised memory could hold NaN bit patterns, which no mask can cancel.
        shape = (num_layers, num_blocks * num_kv_heads * block_size, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.allocator = BlockAllocator(num_blocks)
        self._workspace = (torch.empty(0, dtype=dtype, device=device),) * 2

    def workspace(self, numel: int) -> tuple[Tensor, Tensor]:
        """Two reusable buffers for the gathered keys and values of one layer.

        Every layer's gather has the same size within a step, and layers run one after another,
        so two buffers serve them all. Reusing them is not a micro-optimisation: a fresh
        multi-megabyte tensor per layer costs page faults that made the gather 5-7x slower.
        """
        if self._workspace[0].numel() < numel:
            size = max(numel, int(1.5 * self._workspace[0].numel()))
            like = self.k
            self._workspace = tuple(torch.empty(size, dtype=like.dtype, device=like.device)
                                    for _ in range(2))
        return self._workspace

    @staticmethod
    def bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int,
                        dtype: torch.dtype) -> int:
        return 2 * num_layers * num_kv_heads * head_dim * torch.finfo(dtype).bits // 8

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def _rows(self, blocks: Tensor, offsets: Tensor, heads: Tensor) -> Tensor:
        """Storage rows of (block, offset) tokens for each head; heads broadcast on dim 1."""
        kv, bs = self.num_kv_heads, self.block_size
        return (blocks[:, None] * kv + heads[None, :, None]) * bs + offsets[:, None]

    def prepare(
        self, block_tables: list[list[int]], context_lens: list[int], query_lens: list[int]
    ) -> BatchView:
        """The view for one forward pass over B sequences.

        Sequence b has context_lens[b] tokens in all, the last query_lens[b] of them new this
        step. The batch is left-padded: queries to Q = max query, keys to L columns, so every
        row's newest query sits in the last column and the model's causal mask plus a key
        padding mask is exactly right (see lmstack.nn.attention.build_attention_mask). With
        one query per row (decoding) keys are read a block at a time and L rounds up to whole
        blocks; the padding mask then also hides the unused tail of each last block.
        """
        device = self.k.device
        bs, kv = self.block_size, self.num_kv_heads
        B, Q = len(context_lens), max(query_lens)
        ctx = torch.tensor(context_lens, device=device)
        width = max(len(t) for t in block_tables)
        table = torch.tensor([t + [NULL_BLOCK] * (width - len(t)) for t in block_tables],
                             device=device)
        heads = torch.arange(kv, device=device)
        # Where this step's new tokens go: rows (b, kv head, query column), padding to block 0.
        qpos = torch.arange(Q, device=device)[None, :] - Q + ctx[:, None]  # [B, Q]
        qpad = qpos < ctx[:, None] - torch.tensor(query_lens, device=device)[:, None]
        qpos = qpos.clamp(min=0)
        qblock = table.gather(1, qpos // bs).masked_fill(qpad, NULL_BLOCK)
        write = self._rows(qblock, qpos % bs, heads)  # [B, kv, Q]
        if Q == 1 and self.tile_reads:
            nb = [len(t) for t in block_tables]
            NB = max(nb)
            tiles = torch.tensor([[NULL_BLOCK] * (NB - n) + t[:n] for t, n in
                                  zip(block_tables, nb, strict=True)], device=device)
            read = (tiles[:, None, :] * kv + heads[None, :, None]).reshape(-1)
            L = NB * bs
            col = torch.arange(L, device=device)[None, :]
            start = (NB - torch.tensor(nb, device=device))[:, None] * bs
            valid = (col >= start) & (col < start + ctx[:, None])
            uniform = bool(valid.all())
            return BatchView(self, read, write.reshape(-1), B, L, Q,
                             None if uniform else valid, tiles=True)
        L = max(context_lens)
        # Key column j of row b holds position j - (L - ctx_b); negative means left padding.
        pos = torch.arange(L, device=device)[None, :] - (L - ctx)[:, None]
        pad = pos < 0
        pos = pos.clamp(min=0)
        block = table.gather(1, pos // bs).masked_fill(pad, NULL_BLOCK)
        read = self._rows(block, pos % bs, heads).reshape(-1)  # rows (b, kv head, column)
        uniform = min(context_lens) == L and min(query_lens) == Q
        return BatchView(self, read, write.reshape(-1), B, L, Q, None if uniform else ~pad)


class BatchView:
    """One step's window onto the paged cache, satisfying lmstack.nn.attention.KVCache.

    `length` is what the model reads as "tokens already cached"; with left padding that is
    L - Q for every row, which makes its default mask line up with ours.
    """

    def __init__(self, cache: PagedKVCache, read: Tensor, write: Tensor, batch: int,
                 keys: int, queries: int, key_mask: Tensor | None, tiles: bool = False):
        self.cache, self.read, self.write, self.tiles = cache, read, write, tiles
        self.batch, self.keys, self.queries = batch, keys, queries
        self.length = keys - queries
        self.key_mask = key_mask  # [B, L] bool, True for real keys; None when nothing is padded

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store this step's keys and values [B, kv_heads, Q, d]; return every row's keys and
        values so far as [B, kv_heads, L, d] (attention shares them among query heads)."""
        c = self.cache
        d = c.head_dim
        kc, vc = c.k[layer], c.v[layer]
        kc.index_copy_(0, self.write, k.reshape(-1, d))
        vc.index_copy_(0, self.write, v.reshape(-1, d))
        shape = (self.batch, c.num_kv_heads, self.keys, d)
        row = c.block_size * d if self.tiles else d
        numel = self.read.numel() * row
        kbuf, vbuf = c.workspace(numel)
        keys, values = kbuf[:numel].view(-1, row), vbuf[:numel].view(-1, row)
        torch.index_select(kc.view(-1, row), 0, self.read, out=keys)
        torch.index_select(vc.view(-1, row), 0, self.read, out=values)
        return keys.view(shape), values.view(shape)

    def advance(self, n: int) -> None:
        """The engine, not the view, tracks how many tokens each sequence has cached."""
