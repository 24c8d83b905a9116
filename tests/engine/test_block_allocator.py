"""The paged cache's block allocator: hands out each block once, refuses a double free."""

from __future__ import annotations

import pytest

from lmstack.engine.paged_cache import NULL_BLOCK, BlockAllocator


def test_blocks_come_back_and_the_null_block_is_never_handed_out():
    alloc = BlockAllocator(5)
    assert alloc.capacity == alloc.num_free == 4
    first = alloc.allocate(3)
    assert first == [1, 2, 3] and NULL_BLOCK not in first
    alloc.free(first)
    assert sorted(alloc.allocate(4)) == [1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="asked for 1 KV blocks but only 0 are free"):
        alloc.allocate(1)


@pytest.mark.parametrize("bad", [[2, 2], [4], [NULL_BLOCK], [9]],
                         ids=["twice-in-one-call", "never-allocated", "null", "out-of-range"])
def test_a_double_or_foreign_free_raises_and_changes_nothing(bad):
    alloc = BlockAllocator(5)
    held = alloc.allocate(3)  # blocks 1, 2, 3
    with pytest.raises(RuntimeError, match="double free"):
        alloc.free(bad)
    assert alloc.num_free == 1
    alloc.free(held)
    with pytest.raises(RuntimeError, match="double free"):
        alloc.free(held[:1])  # given back already
    assert alloc.num_free == 4
