"""StaticKVCache: appends per layer, returns the prefix so far, refuses overflow with a fix."""

from __future__ import annotations

import pytest
import torch

from lmstack.nn.kv_cache import StaticKVCache


def test_update_returns_everything_stored_so_far():
    torch.manual_seed(0)
    cache = StaticKVCache(num_layers=2, batch_size=3, num_kv_heads=2, max_length=8, head_dim=4)
    keys: dict[int, list] = {0: [], 1: []}
    values: dict[int, list] = {0: [], 1: []}
    for step in (3, 1, 2):
        for layer in (0, 1):
            k, v = torch.randn(3, 2, step, 4), torch.randn(3, 2, step, 4)
            keys[layer].append(k)
            values[layer].append(v)
            got_k, got_v = cache.update(layer, k, v)
            assert torch.equal(got_k, torch.cat(keys[layer], dim=2))
            assert torch.equal(got_v, torch.cat(values[layer], dim=2))
        cache.advance(step)
    assert cache.length == 6
    # The unused tail stays empty, and layers do not see each other's entries.
    assert cache.k[:, :, :, 6:].abs().sum() == 0
    assert not torch.equal(cache.k[0, :, :, :6], cache.k[1, :, :, :6])


def test_overflow_is_refused_with_the_fix():
    cache = StaticKVCache(1, 1, 1, max_length=4, head_dim=2)
    cache.update(0, torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))
    cache.advance(3)
    with pytest.raises(ValueError, match="holds 4 tokens but 5 were requested.*larger max_length"):
        cache.update(0, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))


def test_dtype_is_kept():
    cache = StaticKVCache(1, 1, 1, 4, 2, dtype=torch.bfloat16)
    k, _ = cache.update(0, torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))
    assert k.dtype == torch.bfloat16
