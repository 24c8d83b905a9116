"""Which floating-point precision decodes fastest on this machine: measured, never assumed.

CPUs differ: with AVX-512 BF16 / AMX a bf16 matmul beats fp32 (half the bytes, native
instructions); with only AVX2 it is emulated and ~7x slower. So we time both (as llama.cpp's
and oneDNN's dispatchers decide by the CPU's features, but by measurement, which also sees
the library's actual kernels).
"""

from __future__ import annotations

import functools
import time

import torch

from lmstack.nn.packed import PackedWeight, packed_linear, packing_available


@functools.cache
def probe_inference_dtype(hidden: int = 576, intermediate: int = 1536, device: str = "cpu",
                          margin: float = 0.9) -> torch.dtype:
    """torch.bfloat16 when decoding-shaped matmuls run faster in bf16 than fp32, else float32.

    Times a decode step's worth of matrix products ([hidden, intermediate] weights, several
    copies so they come from memory, not cache) at batch 1 and at batch 16, in turns, the
    fastest of several rounds (other jobs only ever slow a round down, so the minimum is the
    stable answer on a shared machine); bf16 must win the sum by `margin` (10%) to be chosen,
    since it also rounds the weights. Cached per shape and device: it takes a fraction of a second, once. On CUDA
    bf16 is taken when the device supports it.
    """
    if device != "cpu":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(intermediate, hidden, generator=g) * 0.02 for _ in range(8)]
    # Each weight as the engine would run it: bf16 prepacked where oneDNN allows (see
    # lmstack.nn.packed), fp32 as it is.
    candidates = {dtype: [(w, PackedWeight(w) if packing_available(w) else None)
                          for w in (w.to(dtype) for w in weights)]
                  for dtype in (torch.float32, torch.bfloat16)}
    inputs = {(dtype, b): torch.randn(b, hidden, generator=g).to(dtype)
              for dtype in candidates for b in (1, 16)}
    times: dict[torch.dtype, list[float]] = {dtype: [] for dtype in candidates}
    with torch.inference_mode():
        for _ in range(12):
            for dtype, ws in candidates.items():
                start = time.perf_counter()
                for b in (1, 16):
                    for w, packed in ws:
                        packed_linear(inputs[dtype, b], w, None, packed)
                times[dtype].append(time.perf_counter() - start)
    fp32, bf16 = (min(times[d]) for d in candidates)
    return torch.bfloat16 if bf16 < margin * fp32 else torch.float32
