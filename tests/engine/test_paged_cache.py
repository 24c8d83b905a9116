"""Cache preparation: a step context over the paged cache gives every query exactly the keys of
its own sequence at or before it (within a sliding window), in either read layout."""

from __future__ import annotations

import pytest
import torch

from lmstack.engine.paged_cache import PagedKVCache

KV, D, BS = 2, 3, 4


def left_pad(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    """[n_i, kv, d] rows -> [B, kv, width, d], left-padded with zeros."""
    out = torch.zeros(len(rows), KV, width, D)
    for b, r in enumerate(rows):
        if len(r):
            out[b, :, width - len(r):] = r.transpose(0, 1)
    return out


@pytest.mark.parametrize("tiles", [True, False], ids=["tile-reads", "token-reads"])
@pytest.mark.parametrize("window", [None, 3], ids=["full", "window3"])
@pytest.mark.parametrize("queries", [[1, 1, 1], [3, 1, 8]], ids=["decode", "mixed"])
def test_each_query_sees_exactly_its_own_past(tiles, window, queries):
    torch.manual_seed(0)
    cache = PagedKVCache(1, num_blocks=16, block_size=BS, num_kv_heads=KV, head_dim=D)
    cache.tile_reads = tiles
    context = [5, 12, 8]
    tables = [cache.allocator.allocate(cache.blocks_for(n)) for n in context]
    history = [torch.randn(n, KV, D) for n in context]  # each sequence's keys, by position
    past = [c - q for c, q in zip(context, queries, strict=True)]

    # Step 1 stores the past (rows with none are skipped, as the engine would not run them).
    rows = [b for b, n in enumerate(past) if n]
    first = cache.prepare([tables[b] for b in rows], [past[b] for b in rows],
                          [past[b] for b in rows])
    k = left_pad([history[b][:past[b]] for b in rows], max(past))
    first.update(0, k, k)

    step = cache.prepare(tables, context, queries)
    Q = max(queries)
    new = left_pad([h[p:] for h, p in zip(history, past, strict=True)], Q)
    keys, values = step.update(0, new, new)
    assert torch.equal(keys, values)
    mask = step.attention_mask(torch.float32, window)
    L = keys.shape[2]
    allowed = (torch.ones(len(context), 1, Q, L, dtype=torch.bool) if mask is None
               else mask == 0)
    assert step.max_context == max(context)
    for b, (ctx, q) in enumerate(zip(context, queries, strict=True)):
        for i in range(Q - q, Q):  # the real queries of row b
            pos = ctx - q + i - (Q - q)
            assert step.positions[b, i] == pos
            lo = 0 if window is None else max(0, pos - window + 1)
            seen = keys[b, :, allowed[b, 0, i]].transpose(0, 1)  # [n, kv, d] in column order
            assert torch.equal(seen, history[b][lo:pos + 1]), (b, i)


def test_tiles_round_the_key_axis_up_to_whole_blocks():
    cache = PagedKVCache(1, num_blocks=8, block_size=BS, num_kv_heads=KV, head_dim=D)
    tables = [cache.allocator.allocate(2), cache.allocator.allocate(1)]
    step = cache.prepare(tables, [6, 3], [1, 1])
    assert step.tiles and step.keys == 2 * BS and step.max_context == 6
    tokens = PagedKVCache(1, num_blocks=8, block_size=BS, num_kv_heads=KV, head_dim=D,
                          tile_reads=False).prepare(tables, [6, 3], [1, 1])
    assert not tokens.tiles and tokens.keys == 6


def test_a_uniform_batch_needs_no_mask():
    cache = PagedKVCache(1, num_blocks=8, block_size=BS, num_kv_heads=KV, head_dim=D,
                         tile_reads=False)
    tables = [cache.allocator.allocate(2), cache.allocator.allocate(2)]
    assert cache.prepare(tables, [6, 6], [1, 1]).attention_mask(torch.float32) is None
    assert cache.prepare(tables, [6, 6], [6, 6]).attention_mask(torch.float32) is None
    assert cache.prepare(tables, [6, 6], [6, 6]).attention_mask(torch.float32, 3) is not None
    assert cache.prepare(tables, [6, 5], [1, 1]).attention_mask(torch.float32) is not None
