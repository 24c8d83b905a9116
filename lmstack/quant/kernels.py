"""The matrix product of activations with a quantized weight, by the fastest path that works here.

Measured on an AVX-512 CPU with 2 threads (FIELD_NOTES, benchmarks/quant.py's kernel table):
PyTorch's fused weight-only ops (`torch._weight_int8pack_mm`, `_weight_int4pack_mm_for_cpu`)
ran slower than the fp32 matmul, so the fast path is our own C++ (kernels.cpp), compiled once
on first use with the machine's own instruction set (-march=native: the CPU's flags are probed
where it is built, never assumed) and cached by torch.utils.cpp_extension. Where it cannot be
built (no compiler), one line says so and the weight is decoded to float for each product:
slower, same numbers.

Small batches (decoding) read the codes directly; a large one (a prompt) decodes the weight
once and runs a float GEMM, which then reuses each weight many times over.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from lmstack.quant.schemes import QuantWeight

SOURCE = Path(__file__).with_name("kernels.cpp")
FUNCTIONS = ["int8_matmul", "int4_matmul", "simd_path"]
# Rows above which decoding the weight and a float GEMM beat the kernels' one pass (measured
# with benchmarks/quant.py: the kernels keep 4 rows in registers, a GEMM blocks for cache).
GEMM_FROM_ROWS = 64
# torch.utils.cpp_extension marks a build in progress with a `lock` file and waits, without a
# time limit, for it to go. A build killed halfway (Ctrl-C during the first use) leaves it
# behind, and every later run would hang; a compile here takes about a minute, so a lock this
# old belongs to no live build.
STALE_LOCK_SECONDS = 600


def clear_stale_lock(build_dir: Path) -> None:
    lock = build_dir / "lock"
    if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
        print(f"lmstack.quant: removing {lock}, left by a kernel build that did not finish",
              file=sys.stderr)
        lock.unlink(missing_ok=True)


@functools.cache
def native():
    """The compiled extension, or None (after one line on stderr) where it cannot be built."""
    try:
        from torch.utils.cpp_extension import get_default_build_root, load_inline

        build_dir = Path(get_default_build_root()) / (
            f"lmstack_quant_kernels_py{sys.version_info.major}{sys.version_info.minor}")
        build_dir.mkdir(parents=True, exist_ok=True)
        clear_stale_lock(build_dir)
        return load_inline("lmstack_quant_kernels", cpp_sources=[SOURCE.read_text()],
                           functions=FUNCTIONS, extra_cflags=["-O3", "-march=native"],
                           build_directory=str(build_dir))
    except Exception as e:  # noqa: BLE001 - compiler missing, headers missing, build failure
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"lmstack.quant: the C++ kernels could not be built ({first}); quantized layers "
              "decode their weights per product instead (correct, slower)", file=sys.stderr)
        return None


def kernel_name() -> str:
    """Which path quantized products take here: 'cpp-avx512', 'cpp-scalar' or 'dequantize'."""
    lib = native()
    return f"cpp-{lib.simd_path()}" if lib is not None else "dequantize"


def quant_matmul(x: Tensor, w: QuantWeight) -> Tensor:
    """x [..., K] @ W.T -> [..., N] in x's dtype (computed in float32)."""
    lead, k = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, k)  # [B, K]
    lib = native() if rows.device.type == "cpu" else None
    if lib is None or rows.shape[0] > GEMM_FROM_ROWS:
        return F.linear(x, w.dequantize().to(x.dtype))
    xf = rows.float().contiguous()
    if w.kind == "int8":
        y = lib.int8_matmul(xf, w.q, w.scale)
    else:
        y = lib.int4_matmul(xf, w.q, w.scale, w.minimum)
    return y.to(x.dtype).view(*lead, w.shape[0])
