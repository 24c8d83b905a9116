"""A paged key/value cache: fixed-size blocks handed out on demand, one block table per sequence.

Follows Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with
PagedAttention" (vLLM), in plain torch: each step gathers a batch's blocks into a padded view.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmstack.nn.attention import additive_mask

NULL_BLOCK = 0  # never handed out: padding reads and writes land here


class BlockAllocator:
    """A free list of block ids. Block 0 is reserved as the null block."""

    def __init__(self, num_blocks: int):
        if num_blocks < 2:
            raise ValueError("the KV cache needs at least 2 blocks (one is reserved)")
        self.num_blocks = num_blocks
        # Popping from the end hands out low ids first, which keeps small runs compact.
        self._free = list(range(num_blocks - 1, NULL_BLOCK, -1))
        # A block given back twice would later be handed to two sequences at once, each
        # overwriting the other's keys: silent garbage. Tracking ownership turns it into an error.
        self._in_use = [False] * num_blocks

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
        for b in taken:
            self._in_use[b] = True
        return taken[::-1]

    def free(self, blocks: list[int]) -> None:
        """Give blocks back; one not handed out (or given twice) raises and frees none."""
        if len(set(blocks)) != len(blocks) or not all(
                0 < b < self.num_blocks and self._in_use[b] for b in blocks):
            raise RuntimeError(f"freeing KV blocks {blocks}, some of which are not allocated "
                               "(a double free): the scheduler's bookkeeping is broken")
        for b in blocks:
            self._in_use[b] = False
        self._free.extend(reversed(blocks))


class PagedKVCache:
    """Per-layer key and value storage, block-major: [num_blocks, kv_heads, block_size, d].

    Token `pos` of a sequence lives in block block_table[pos // block_size] at offset
    pos % block_size. One block of one head is a contiguous [block_size, d] tile, so reading a
    sequence's cache is a gather of whole tiles, not of single rows. Between steps the cache
    only stores; `prepare` turns one step's batch into a `BatchView`, the step context the
    model reads positions and mask from and its attention layers store and read through.
    """

    def __init__(
        self, num_layers: int, num_blocks: int, block_size: int, num_kv_heads: int,
        head_dim: int, dtype: torch.dtype = torch.float32, device=None,
        tile_reads: bool = True,
    ):
        self.num_layers, self.block_size = num_layers, block_size
        self.num_kv_heads, self.head_dim = num_kv_heads, head_dim
        # Tile reads (whole blocks, see prepare) suit decoding; token reads are the reference
        # the tests hold them to.
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
        """The step context for one forward pass over B sequences.

        Sequence b has context_lens[b] tokens in all, the last query_lens[b] of them new this
        step. Queries are left-padded to Q = max query, so every row's newest token sits in
        the last column. Keys come in one of two layouts: token by token, left-padded to the
        longest context L; or, with one query per row (decoding), whole blocks, right-aligned
        to the most blocks, L rounding up to whole blocks. Either way each key column's
        position is known, and the mask is built from positions, so padding, the unused tail
        of a last block and a sliding window all come out right.
        """
        device = self.k.device
        bs, kv = self.block_size, self.num_kv_heads
        Q = max(query_lens)
        ctx = torch.tensor(context_lens, device=device)[:, None]  # [B, 1]
        width = max(len(t) for t in block_tables)
        table = torch.tensor([t + [NULL_BLOCK] * (width - len(t)) for t in block_tables],
                             device=device)
        heads = torch.arange(kv, device=device)
        # Where this step's new tokens go: rows (b, kv head, query column), padding to block 0.
        qpos = torch.arange(Q, device=device)[None, :] - Q + ctx  # [B, Q]
        qpad = qpos < ctx - torch.tensor(query_lens, device=device)[:, None]
        positions = qpos.clamp(min=0)
        qblock = table.gather(1, positions // bs).masked_fill(qpad, NULL_BLOCK)
        write = self._rows(qblock, positions % bs, heads).reshape(-1)  # [B * kv * Q]
        qpos = qpos.masked_fill(qpad, -1)  # a padding query sees no key (no NaN: additive)
        if Q == 1 and self.tile_reads:
            nb = [len(t) for t in block_tables]
            NB = max(nb)
            tiles = torch.tensor([[NULL_BLOCK] * (NB - n) + t[:n] for t, n in
                                  zip(block_tables, nb, strict=True)], device=device)
            read = (tiles[:, None, :] * kv + heads[None, :, None]).reshape(-1)
            L = NB * bs
            start = (NB - torch.tensor(nb, device=device))[:, None] * bs
            kpos = torch.arange(L, device=device)[None, :] - start  # [B, L]
            uniform = min(context_lens) == L  # every row's blocks exactly full
            return BatchView(self, read, write, positions, qpos, kpos, max(context_lens),
                             uniform, tiles=True)
        L = max(context_lens)
        # Key column j of row b holds position j - (L - ctx_b); negative means left padding.
        kpos = torch.arange(L, device=device)[None, :] - (L - ctx)  # [B, L]
        block = table.gather(1, kpos.clamp(min=0) // bs).masked_fill(kpos < 0, NULL_BLOCK)
        read = self._rows(block, kpos.clamp(min=0) % bs, heads).reshape(-1)
        uniform = min(context_lens) == L and min(query_lens) == Q
        return BatchView(self, read, write, positions, qpos, kpos, L, uniform)


class BatchView:
    """One step's window onto the paged cache: a lmstack.nn.step_context.StepContext.

    `read` and `write` are storage rows (tiles, when `tiles`), `key_positions` [B, L] each key
    column's position in its sequence: negative for padding, and past the row's context in
    the unused tail of its last block.
    """

    def __init__(self, cache: PagedKVCache, read: Tensor, write: Tensor, positions: Tensor,
                 query_positions: Tensor, key_positions: Tensor, max_context: int,
                 uniform: bool, tiles: bool = False):
        self.cache, self.read, self.write, self.tiles = cache, read, write, tiles
        self.positions = positions  # [B, Q], padding queries at 0
        self.batch, self.queries = positions.shape
        self.keys = key_positions.shape[1]
        self.max_context = max_context
        self.query_positions = query_positions  # [B, Q], padding queries at -1
        self.key_positions = key_positions  # [B, L]
        # Nothing to hide when every key column is real and every row has Q new tokens.
        self.uniform = uniform

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None
                       ) -> Tensor | None:
        """[B, 1, Q, L] additive: real keys at or before the query, within the window."""
        L, Q = self.keys, self.queries
        if self.uniform and Q in (1, L) and (sliding_window is None or L <= sliding_window):
            return None  # SDPA's fastest kernel: plain causal (or one query seeing all)
        k = self.key_positions[:, None, :]  # [B, 1, L]
        q = self.query_positions[:, :, None]  # [B, Q, 1]
        # A real query's position is below its row's context, so `k <= q` already hides the
        # unused tail of a last block; `k >= 0` hides left padding (rows or whole blocks).
        allowed = (k >= 0) & (k <= q)
        if sliding_window is not None:
            allowed &= k > q - sliding_window
        return additive_mask(allowed, dtype)[:, None]

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
