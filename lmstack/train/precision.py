"""`precision: auto`: pick bf16 autocast or fp32 for training on this machine, and say why.

On a GPU the device's bf16 support decides. On a CPU, bf16 is only a win with native bf16
instructions (AVX512-BF16, AMX), so we time it as training runs it: a 512×512 matmul under
autocast against fp32, interleaved, the fastest of 1.5 s of runs, bf16 only when clearly
faster. The answer is cached per machine in the user's cache
folder (written atomically), so the same command trains the same way every time.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmstack.fileio import atomic_write_text

PROBE_SIZE, PROBE_REPS, PROBE_SECONDS = 512, 21, 1.5
BF16_MIN_SPEEDUP = 1.25  # bf16 must beat fp32 by this factor: near-ties stay fp32, stably


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "bf16" or "fp32"
    reason: str


def cache_file() -> Path:
    root = os.environ.get("LMSTACK_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmstack"
    return Path(root) / "precision.json"


def machine_key() -> str:
    """What the probe's answer depends on: CPU model and bf16 flags, torch, thread count."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = " ".join(sorted(f for f in line.split() if "bf16" in f or "amx" in f))
                break
    except OSError:  # not Linux: the processor string has to do
        pass
    return f"{model} [{flags}] torch {torch.__version__} threads {torch.get_num_threads()}"


def time_matmuls(size: int = PROBE_SIZE, seconds: float = PROBE_SECONDS) -> tuple[float, float]:
    """Fastest wall-clock seconds of one size×size matmul in fp32 and under bf16 autocast.

    The fastest of as many runs as fit in `seconds` (at least PROBE_REPS each), as `timeit`
    advises: other processes on a shared machine only ever add time, so the minimum is the
    stable estimate once one run got the cores to itself (medians here swung 1-9 ms).
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    times: dict[bool, list[float]] = {False: [], True: []}
    for bf16 in (False, True):  # warm-up: the first calls pick kernels
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            a @ b
    stop = time.perf_counter() + seconds
    while len(times[True]) < PROBE_REPS or time.perf_counter() < stop:
        for bf16 in (False, True):  # interleaved: a load swing hits both alike
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                t0 = time.perf_counter()
                a @ b
                times[bf16].append(time.perf_counter() - t0)
    return min(times[False]), min(times[True])


def decide(fp32_s: float, bf16_s: float) -> PrecisionChoice:
    speedup = fp32_s / max(bf16_s, 1e-12)
    timing = (f"{PROBE_SIZE}² matmul: fp32 {fp32_s * 1e3:.2f} ms, bf16 {bf16_s * 1e3:.2f} ms, "
              f"fastest of {PROBE_SECONDS:g} s of runs")
    if speedup >= BF16_MIN_SPEEDUP:
        return PrecisionChoice("bf16", f"bf16 is {speedup:.1f}× faster here ({timing})")
    return PrecisionChoice("fp32", f"bf16 is {speedup:.2f}× fp32's speed here, not the "
                           f"{BF16_MIN_SPEEDUP:g}× that would pay ({timing})")


def probe_cpu(use_cache: bool = True) -> PrecisionChoice:
    """The cached answer for this machine, or a fresh probe (then cached)."""
    path, key = cache_file(), machine_key()
    try:
        cached = json.loads(path.read_text(encoding="utf-8")) if use_cache else {}
    except (OSError, ValueError):
        cached = {}
    if isinstance(cached.get(key), dict) and cached[key].get("precision") in ("bf16", "fp32"):
        hit = cached[key]
        return PrecisionChoice(hit["precision"], f"{hit['reason']}; cached in {path}")
    choice = decide(*time_matmuls())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = {k: v for k, v in cached.items() if k != key} if use_cache else {}
        entries[key] = {"precision": choice.precision, "reason": choice.reason}
        atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError:  # a read-only home: the answer still holds for this run
        pass
    return choice


def choose_precision(precision: str, device: torch.device) -> PrecisionChoice:
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("training.precision fp16 needs a GPU (GradScaler); use bf16 on CPU")
    if precision != "auto":
        return PrecisionChoice(precision, "as the config says")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return PrecisionChoice("bf16" if ok else "fp32",
                               f"this GPU {'supports' if ok else 'lacks'} bf16")
    return probe_cpu()


def resolve_precision(precision: str, device: torch.device, console: Any = None) -> str:
    """The precision to train in; `auto` prints its choice and the reason on `console`."""
    choice = choose_precision(precision, device)
    if console is not None and precision == "auto":
        console.print(f"precision auto → {choice.precision}: {choice.reason}", highlight=False)
    return choice.precision
