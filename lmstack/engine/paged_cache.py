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
    """Per-layer key and value storage of shape [num_blocks * block_size, kv_heads, head_dim].

    A token's slot is block_table[pos // block_size] * block_size + pos % block_size. Between
    steps the cache only stores; `prepare` turns one step's batch into a `BatchView`, the object
    the model's attention layers talk to through the KVCache protocol.
    """

    def __init__(
        self, num_layers: int, num_blocks: int, block_size: int, num_heads: int,
        num_kv_heads: int, head_dim: int, dtype: torch.dtype = torch.float32, device=None,
    ):
        self.num_layers, self.block_size = num_layers, block_size
        self.num_kv_heads, self.head_dim = num_kv_heads, head_dim
        self.groups = num_heads // num_kv_heads
        shape = (num_layers, num_blocks * block_size, num_kv_heads, head_dim)
        # torch.empty: pages the OS never touches cost no memory. Only the null block is ever
        # read before it is written (as padding), so only it needs finite values.
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.k[:, :block_size].zero_()
        self.v[:, :block_size].zero_()
        self.allocator = BlockAllocator(num_blocks)

    @staticmethod
    def bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int,
                        dtype: torch.dtype) -> int:
        return 2 * num_layers * num_kv_heads * head_dim * torch.finfo(dtype).bits // 8

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def prepare(
        self, block_tables: list[list[int]], context_lens: list[int], query_lens: list[int]
    ) -> BatchView:
        """The view for one forward pass over B sequences.

        Sequence b has context_lens[b] tokens in all, the last query_lens[b] of them new this
        step. The batch is left-padded: keys to L = max context, queries to Q = max query, so
        every row's newest token sits in the last column and the model's ordinary causal mask
        plus a padding mask is exactly right (see lmstack.nn.attention.build_attention_mask).
        """
        device = self.k.device
        bs = self.block_size
        B, L, Q = len(context_lens), max(context_lens), max(query_lens)
        ctx = torch.tensor(context_lens, device=device)
        width = max(len(t) for t in block_tables)
        table = torch.tensor([t + [NULL_BLOCK] * (width - len(t)) for t in block_tables],
                             device=device)
        # Position of column j in row b: j - (L - ctx_b); negative means left padding.
        pos = torch.arange(L, device=device)[None, :] - (L - ctx)[:, None]
        pad = pos < 0
        pos = pos.clamp(min=0)
        slots = table.gather(1, pos // bs) * bs + pos % bs
        slots.masked_fill_(pad, 0)
        # The last Q key columns line up with the Q query columns; query padding is written to
        # the null block's slot 0, which is harmless.
        write = slots[:, L - Q:]
        if Q > 1 and min(query_lens) < Q:
            qpad = torch.arange(Q, device=device)[None, :] < (
                Q - torch.tensor(query_lens, device=device))[:, None]
            write = write.masked_fill(qpad, 0)
        uniform = min(context_lens) == L and min(query_lens) == Q
        mask = None if uniform else ~pad
        return BatchView(self, self._head_index(slots), write.reshape(-1), B, L, Q, mask)

    def _head_index(self, slots: Tensor) -> Tensor:
        """Rows of the [slots * kv_heads, head_dim] storage that make up [B, heads, L, d].

        Grouped-query attention shares each key/value head among `groups` query heads; reading
        head h // groups for every query head h folds the usual repeat_interleave into the
        gather, and ordering the rows (b, h, j) makes the result contiguous for SDPA.
        """
        kv = self.num_kv_heads
        heads = torch.arange(kv * self.groups, device=slots.device) // self.groups
        return (slots[:, None, :] * kv + heads[None, :, None]).reshape(-1)


class BatchView:
    """One step's window onto the paged cache, satisfying lmstack.nn.attention.KVCache.

    `length` is what the model reads as "tokens already cached"; with left padding that is
    L - Q for every row, which makes its default mask line up with ours.
    """

    def __init__(self, cache: PagedKVCache, read: Tensor, write: Tensor, batch: int,
                 keys: int, queries: int, key_mask: Tensor | None):
        self.cache, self.read, self.write = cache, read, write
        self.batch, self.keys, self.queries = batch, keys, queries
        self.length = keys - queries
        self.key_mask = key_mask  # [B, L] bool, True for real keys; None when nothing is padded

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store this step's keys and values [B, kv_heads, Q, d]; return every row's keys and
        values so far as [B, heads, L, d], already expanded to the query heads."""
        c = self.cache
        kv, d = c.num_kv_heads, c.head_dim
        kc, vc = c.k[layer], c.v[layer]
        # [B, kv_heads, Q, d] -> [B*Q, kv_heads, d] rows in the same order as self.write.
        kc.index_copy_(0, self.write, k.transpose(1, 2).reshape(-1, kv, d))
        vc.index_copy_(0, self.write, v.transpose(1, 2).reshape(-1, kv, d))
        shape = (self.batch, kv * c.groups, self.keys, d)
        keys = kc.view(-1, d).index_select(0, self.read).view(shape)
        values = vc.view(-1, d).index_select(0, self.read).view(shape)
        return keys, values

    def advance(self, n: int) -> None:
        """The engine, not the view, tracks how many tokens each sequence has cached."""
