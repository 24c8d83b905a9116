"""Training-step speed: forward + backward tokens/s of lmstack's Llama against transformers'.

Both models hold the same weights (the transformers model is saved and loaded into ours), run
in one process on the same batches, in turns, so load from other jobs hits both alike.
Run: `.venv/bin/python benchmarks/forward.py` (about 5-10 minutes on 2 cores). bf16 modes are
skipped, with the reason recorded, on CPUs whose bf16 matmul is far slower than fp32 (no
AVX512-BF16 or AMX); `--force-bf16` runs them anyway.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers

from lmstack.models.hub import load_model

# The field notes' reference model: a 56M-parameter Llama with grouped-query attention.
CONFIG = {"vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1376,
          "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4,
          "max_position_embeddings": 1024, "tie_word_embeddings": False}
SMOKE = {**CONFIG, "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
RESULTS = Path(__file__).parent / "results" / "forward.json"


def build_pair(config: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A random transformers Llama and lmstack's copy of it, loaded from its saved folder."""
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**config, attn_implementation="sdpa"))
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_model(folder)
    ids = torch.randint(0, config["vocab_size"], (2, 16))
    with torch.no_grad():
        diff = (hf.eval()(input_ids=ids).logits - ours(ids)).abs().max().item()
    if diff > 1e-4:
        raise SystemExit(f"the two models disagree (max |logits diff| {diff}); not benchmarking")
    return ours.train(), hf.train()


def logits_of(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=ids)
    return out if isinstance(out, torch.Tensor) else out.logits


def train_step(model: torch.nn.Module, ids: torch.Tensor, bf16: bool) -> float:
    """One forward + backward of the next-token loss (no optimizer: it is the same for both).

    The loss is computed here, identically for both models, rather than by either library.
    """
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = logits_of(model, ids)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
    loss.backward()
    for p in model.parameters():
        p.grad = None
    return loss.item()


def matmul_gflops(dtype: torch.dtype) -> float:
    """Throughput of one mid-sized matmul: tells whether this CPU has fast bf16 at all."""
    a, b = torch.randn(512, 512, dtype=dtype), torch.randn(512, 1376, dtype=dtype)
    a @ b
    seconds = min(timed(lambda: a @ b) for _ in range(3))
    return 2 * 512 * 512 * 1376 / seconds / 1e9


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_mode(models: dict, ids: torch.Tensor, bf16: bool, compiled: bool, warmup: int,
             steps: int) -> dict:
    """Warm both models up (this is when torch.compile compiles), then time them in turns."""
    if compiled:
        models = {name: torch.compile(m) for name, m in models.items()}
    out: dict = {"warmup_s": {}, "step_s": {name: [] for name in models}}
    for name, model in models.items():
        out["warmup_s"][name] = sum(timed(lambda m=model: train_step(m, ids, bf16))
                                    for _ in range(warmup))
    order = list(models)
    for _ in range(steps):
        for name in order:
            out["step_s"][name].append(timed(lambda n=name: train_step(models[n], ids, bf16)))
        order.reverse()  # alternate who goes first
    tokens = ids.numel()
    for name, times in out["step_s"].items():
        out[f"{name}_tok_s"] = tokens / statistics.median(times)
        out[f"{name}_best_tok_s"] = tokens / min(times)
    out["ratio"] = out["lmstack_tok_s"] / out["transformers_tok_s"]
    # On a shared machine the fastest step is the one least disturbed by other jobs.
    out["best_ratio"] = out["lmstack_best_tok_s"] / out["transformers_best_tok_s"]
    return out


def machine() -> dict:
    cpu, flags = platform.processor(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = sorted(f for f in line.split(":", 1)[1].split()
                               if f.startswith(("avx", "amx")))
                break
    except OSError:
        pass
    return {"cpu": cpu, "vector_flags": flags, "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model and mode")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="eager-fp32,eager-bf16,compiled-fp32,compiled-bf16")
    parser.add_argument("--force-bf16", action="store_true",
                        help="run bf16 modes even where bf16 matmul is slow")
    parser.add_argument("--smoke", action="store_true", help="a tiny model: checks the script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = SMOKE if args.smoke else CONFIG
    ours, hf = build_pair(config)
    models = {"lmstack": ours, "transformers": hf}
    ids = torch.randint(0, config["vocab_size"], (args.batch, args.seq),
                        generator=torch.Generator().manual_seed(1))
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "config": config, "batch": args.batch, "seq": args.seq,
        "parameters": ours.num_parameters(), "steps": args.steps, "warmup": args.warmup,
        "what": "forward + backward of the next-token cross-entropy, no optimizer step; "
                "bf16 means torch.autocast(cpu, bfloat16) around the forward for both models "
                "(fp32 weights, as in mixed-precision training); compiled means torch.compile "
                "of each whole model with default options",
        "modes": {}, "skipped": {},
    }
    gflops = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    report["matmul_gflops"] = gflops
    for mode in args.modes.split(","):
        kind, precision = mode.split("-")
        if precision == "bf16" and gflops["bf16"] < gflops["fp32"] / 4 and not args.force_bf16:
            report["skipped"][mode] = (
                f"bf16 matmul runs at {gflops['bf16']:.1f} GFLOP/s here against "
                f"{gflops['fp32']:.1f} for fp32 (no native bf16 in this CPU), so one step would "
                "take minutes; --force-bf16 runs it anyway")
            print(f"{mode}: skipped ({report['skipped'][mode]})", file=sys.stderr, flush=True)
            continue
        t0 = time.perf_counter()
        result = run_mode(models, ids, precision == "bf16", kind == "compiled", args.warmup,
                          args.steps)
        result["wall_s"] = time.perf_counter() - t0
        report["modes"][mode] = result
        print(f"{mode}: lmstack {result['lmstack_tok_s']:.0f} tok/s, transformers "
              f"{result['transformers_tok_s']:.0f} tok/s, ratio {result['ratio']:.2f} "
              f"({result['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    report["machine"]["load_average_end"] = os.getloadavg()

    print(f"\n{config['num_hidden_layers']}-layer Llama, {report['parameters'] / 1e6:.0f}M "
          f"parameters, batch {args.batch} x {args.seq}, {args.threads} threads, "
          f"median of {args.steps} steps\n")
    print("| mode | lmstack tok/s | transformers tok/s | ratio (medians) | ratio (best steps) |")
    print("|---|---:|---:|---:|---:|")
    for mode, r in report["modes"].items():
        print(f"| {mode} | {r['lmstack_tok_s']:.0f} | {r['transformers_tok_s']:.0f} | "
              f"{r['ratio']:.2f}x | {r['best_ratio']:.2f}x |")
    for mode, why in report["skipped"].items():
        print(f"| {mode} | skipped | skipped | {why} | |")
    if not args.smoke:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(args.out)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
