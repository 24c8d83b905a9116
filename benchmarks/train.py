"""Training throughput and peak memory: lmstack's Trainer vs a plain transformers loop.

Same Llama shapes, same batch, same threads, same AdamW settings. Every case runs in a fresh
subprocess (so its peak RSS is its own); step times are medians. Also measures activation
checkpointing on vs off on an 8-layer model. Writes benchmarks/results/train.json and prints a
markdown table.

    .venv/bin/python benchmarks/train.py            # all cases (~10 min on 2 busy cores)
    .venv/bin/python benchmarks/train.py --quick    # fewer steps, no torch.compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train.json"
SHAPE = {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688,
         "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
         "max_position_embeddings": 512, "tie_word_embeddings": True}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- one case, in a subprocess
def run_case(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = {**SHAPE, "num_hidden_layers": args.layers}
    rng = np.random.default_rng(0)
    windows = rng.integers(0, shape["vocab_size"], (args.batch * (args.steps + 4),
                                                   args.seq_len + 1))
    amp = args.precision == "bf16"

    if args.impl == "lmstack":
        from lmstack.data import PackedSequences
        from lmstack.models import LlamaConfig, LlamaForCausalLM
        from lmstack.train import Trainer, parse_config
        from lmstack.train.objectives import CausalLM

        model = LlamaForCausalLM(LlamaConfig(**shape))
        cfg = parse_config({
            "model": {"config": {"hidden_size": shape["hidden_size"]}, "compile": args.compile,
                      "gradient_checkpointing": args.checkpointing},
            "data": {"shards": "unused", "seq_len": args.seq_len},
            "optimizer": {"lr": 1e-3}, "schedule": {"warmup_steps": 0},
            "training": {"micro_batch_size": args.batch, "precision": args.precision,
                         "threads": args.threads, "progress": False, "seed": 0,
                         "out_dir": "/tmp/lmstack-bench"}})
        data = PackedSequences(windows.reshape(-1), args.seq_len)
        trainer = Trainer(model, CausalLM(), data, cfg)
        step = trainer.train_step
    else:
        import transformers

        hf_cfg = transformers.LlamaConfig(**shape, rms_norm_eps=1e-6, attn_implementation="sdpa")
        model = transformers.LlamaForCausalLM(hf_cfg).train()
        if args.checkpointing:
            model.gradient_checkpointing_enable()
        net = torch.compile(model) if args.compile else model
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": rest, "weight_decay": 0.0}], lr=1e-3,
                                betas=(0.9, 0.95), foreach=True)
        batches = iter(torch.from_numpy(windows).split(args.batch))

        def step() -> None:
            x = next(batches)[:, :-1]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = net(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    step()  # warm-up: allocates optimizer state, compiles under torch.compile
    first = time.perf_counter() - t0
    step()
    rest_rss = rss_bytes()  # weights + grads freed + optimizer state, between steps
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"step_s": med, "tokens_per_s": args.batch * args.seq_len / med,
            "first_step_s": first, "peak_rss_mb": peak_rss_bytes() / 2**20,
            "step_peak_mb": (peak_rss_bytes() - rest_rss) / 2**20, "steps": args.steps}


# ---------------------------------------------------------------- the driver
def case(impl, precision="fp32", compile=False, layers=4, checkpointing=False, steps=6):
    return {"impl": impl, "precision": precision, "compile": compile, "layers": layers,
            "checkpointing": checkpointing, "steps": steps}


def spawn(c: dict, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--case", c["impl"], "--precision", c["precision"],
           "--layers", str(c["layers"]), "--steps", str(c["steps"]), "--batch", str(args.batch),
           "--seq-len", str(args.seq_len), "--threads", str(args.threads)]
    cmd += ["--compile"] * c["compile"] + ["--checkpointing"] * c["checkpointing"]
    # A fixed mmap threshold makes glibc hand freed tensors back to the OS, so RSS tracks the
    # live tensors and the peak measures activations rather than allocator caching.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536",
           "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        return {**c, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return {**c, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=["lmstack", "hf"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="runs per eager fp32 case")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.case:
        args.impl = args.case
        print(json.dumps(run_case(args)))
        return

    plan = []
    for _ in range(1 if args.quick else args.repeats):  # interleaved, so drift hits both
        plan += [case("lmstack"), case("hf")]
    plan += [case("lmstack", "bf16", steps=2), case("hf", "bf16", steps=2)]
    if not args.quick:
        plan += [case("lmstack", compile=True), case("hf", compile=True)]
    for _ in range(1 if args.quick else args.repeats):
        plan += [case("lmstack", layers=8), case("lmstack", layers=8, checkpointing=True)]
    results = []
    for c in plan:
        t0 = time.perf_counter()
        r = spawn(c, args)
        results.append(r)
        print(f"  {label(r)}: {r.get('tokens_per_s', float('nan')):,.0f} tok/s "
              f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    rows = summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                    "load_avg_1m": os.getloadavg()[0]},
        "batch": args.batch, "seq_len": args.seq_len, "shape": SHAPE, "rows": rows,
        "runs": results}, indent=2) + "\n")
    print(table(rows, args))


def label(r: dict) -> str:
    parts = [r["impl"], r["precision"], "compiled" if r["compile"] else "eager",
             f"{r['layers']} layers"]
    if r["checkpointing"]:
        parts.append("checkpointing")
    return " ".join(parts)


def summarise(results: list[dict]) -> list[dict]:
    """Median over the repeats of each case."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(label(r), []).append(r)
    rows = []
    for name, rs in groups.items():
        ok = [r for r in rs if "error" not in r]
        row = {"case": name, **{k: rs[0][k] for k in ("impl", "precision", "compile", "layers",
                                                      "checkpointing")}, "runs": len(ok)}
        if not ok:
            row["error"] = rs[0]["error"]
        for k in ("tokens_per_s", "step_s", "peak_rss_mb", "step_peak_mb", "first_step_s"):
            if ok:
                row[k] = statistics.median(r[k] for r in ok)
        rows.append(row)
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    by = {r["case"]: r for r in rows}
    lines = [(f"Llama {SHAPE['hidden_size']}-wide, batch {args.batch} x {args.seq_len} tokens, "
             f"{args.threads} threads (median step; peak = RSS high-water mark)."), "",
             "| case | tokens/s | step (s) | peak RSS (MB) | step peak over rest (MB) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error'][:60]} | | | |")
            continue
        lines.append(f"| {r['case']} | {r['tokens_per_s']:,.0f} | {r['step_s']:.2f} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['step_peak_mb']:,.0f} |")

    def ratio(a: str, b: str, key: str = "tokens_per_s") -> str:
        if a in by and b in by and key in by[a] and key in by[b]:
            return f"{by[a][key] / by[b][key]:.2f}x"
        return "n/a"

    pairs = [("fp32 eager, lmstack / HF", "lmstack fp32 eager", "hf fp32 eager"),
             ("fp32 compiled lmstack / HF eager", "lmstack fp32 compiled", "hf fp32 eager"),
             ("fp32 compiled, lmstack / HF", "lmstack fp32 compiled", "hf fp32 compiled"),
             ("bf16 eager, lmstack / HF", "lmstack bf16 eager", "hf bf16 eager")]
    lines.append("")
    for name, a, b in pairs:
        lines.append(f"- {name}: {ratio(a + ' 4 layers', b + ' 4 layers')}")
    off, on = by.get("lmstack fp32 eager 8 layers"), by.get(
        "lmstack fp32 eager 8 layers checkpointing")
    if off and on and "step_peak_mb" in off and "step_peak_mb" in on:
        saved = 1 - on["step_peak_mb"] / off["step_peak_mb"]
        cost = on["step_s"] / off["step_s"] - 1
        lines.append(f"- checkpointing (8 layers): step memory {off['step_peak_mb']:,.0f} -> "
                     f"{on['step_peak_mb']:,.0f} MB ({saved:.0%} less), step time {cost:+.0%}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
