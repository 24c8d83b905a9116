"""The C++ kernels equal the dequantized float matmul (every batch-remainder path, int8 and
int4 groups), and the fallback without them gives the same numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmstack.quant import kernels
from lmstack.quant.apply import quantize_weight


@pytest.mark.parametrize("scheme,group", [("int8", 32), ("int4", 32), ("int4", 128),
                                          ("q8_0", 32)])
@pytest.mark.parametrize("batch", [1, 3, 8, 13, 80])
def test_kernel_matches_dequantized_matmul(scheme, group, batch):
    g = torch.Generator().manual_seed(batch)
    w = torch.randn(72, 384, generator=g) * 0.05
    qw = quantize_weight(w, scheme, group)
    x = torch.randn(batch, 384, generator=g)
    expected = F.linear(x, qw.dequantize())
    torch.testing.assert_close(kernels.quant_matmul(x, qw), expected, rtol=1e-5, atol=2e-5)
    # the deliberate break: a wrong scale is seen
    qw.scale[0] *= 1.01
    assert not torch.allclose(kernels.quant_matmul(x, qw), expected, rtol=1e-5, atol=2e-5)


def test_kernels_build_here():
    assert kernels.kernel_name().startswith("cpp-"), "g++ is installed: the kernels must build"


def test_without_the_extension_products_still_agree(monkeypatch):
    qw = quantize_weight(torch.randn(64, 256) * 0.05, "int4", 64, symmetric=True)
    x = torch.randn(2, 3, 256)  # leading dims are kept
    fast = kernels.quant_matmul(x, qw)
    monkeypatch.setattr(kernels, "native", lambda: None)
    assert kernels.kernel_name() == "dequantize"
    slow = kernels.quant_matmul(x, qw)
    assert slow.shape == (2, 3, 64)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=2e-5)


def test_a_lock_left_by_a_killed_build_is_cleared_but_a_fresh_one_is_kept(tmp_path):
    """torch waits forever on its build lock; one older than any real compile is removed."""
    import os
    import time

    lock = tmp_path / "lock"
    lock.touch()
    kernels.clear_stale_lock(tmp_path)
    assert lock.exists()  # a build may be running right now
    old = time.time() - kernels.STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    kernels.clear_stale_lock(tmp_path)
    assert not lock.exists()
