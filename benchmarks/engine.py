"""Inference speed: lmstack's Engine against transformers `generate`, sequential and static runs.

Side by side in one process, in turns, on one random Llama (the field notes' reference model),
so load from other jobs hits every contestant alike. Methods follow vLLM's benchmarks.
Run: `.venv/bin/python benchmarks/engine.py` (about 5-10 minutes on 2 cores; --quick: ~1).
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting for each other turn every parallel op into a
# millisecond stall when other jobs share the cores (measured: 16-token batches took 1.1 s a
# step instead of 60 ms). Sleeping waiters avoid that; it must be set before torch loads, and
# it applies to every contestant alike. Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers

from lmstack.engine import Engine, SamplingParams
from lmstack.fileio import atomic_write_text
from lmstack.models.generate import generate as static_generate
from lmstack.models.hub import load_model

CONFIG = {"vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1376,
          "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4,
          "max_position_embeddings": 1024, "tie_word_embeddings": False}
RESULTS = Path(__file__).parent / "results" / "engine.json"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def build_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A random transformers Llama and lmstack's copy of it (same weights, separate storage)."""
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**CONFIG, attn_implementation="sdpa")).eval()
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_model(folder).eval()
    return ours, hf


# ---------------------------------------------------------------- memory bandwidth
def bandwidth(runs: int) -> dict:
    """Read (a sum over 256 MB, far beyond the caches) and copy bandwidth, GB/s, medians."""
    big = torch.randn(64 * 1024 * 1024)
    dst = torch.empty_like(big)
    nbytes = big.numel() * 4
    reads, copies = [], []
    big.sum()
    for _ in range(runs):
        t = time.perf_counter()
        big.sum()
        reads.append(nbytes / (time.perf_counter() - t) / 1e9)
        t = time.perf_counter()
        dst.copy_(big)
        copies.append(2 * nbytes / (time.perf_counter() - t) / 1e9)
    return {"read_gb_s": median(reads), "copy_gb_s": median(copies)}


@torch.inference_mode()
def gemv_bandwidth(model: torch.nn.Module, runs: int) -> float:
    """GB/s that PyTorch's own matrix-vector kernel moves over the model's Linear weights (in
    the layout the engine keeps them): the bound for any decoder built on torch matmuls."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    nbytes = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    xs = {m.in_features: torch.randn(1, m.in_features) for m in linears}
    rates = []
    for _ in range(runs + 1):
        t = time.perf_counter()
        for m in linears:
            torch.nn.functional.linear(xs[m.in_features], m.weight)
        rates.append(nbytes / (time.perf_counter() - t) / 1e9)
    return median(rates[1:])


def bytes_per_token(model: torch.nn.Module, context: int) -> int:
    """What one batch-1 decode step must read: every matmul weight (the embedding table is
    only indexed) plus the keys and values of `context` cached tokens."""
    weights = sum(m.weight.numel() * m.weight.element_size() for m in model.modules()
                  if isinstance(m, torch.nn.Linear))
    c = model.config
    kv = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4 * context
    return weights + kv


# ---------------------------------------------------------------- batch-1 decode
def engine_decode_rate(engine: Engine, prompt: list[int], n: int) -> float:
    """Tokens/s between the first and the last token (prefill excluded)."""
    engine.add_request(prompt, SamplingParams(max_tokens=n, temperature=0, ignore_eos=True))
    stamps = []
    while engine.has_unfinished():
        for out in engine.step():
            stamps += [time.perf_counter()] * len(out.token_ids)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


class _Stamps(transformers.generation.streamers.BaseStreamer):
    """Records when transformers hands over each new token (its first put is the prompt)."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def hf_decode_rate(hf, prompt: list[int], n: int) -> float:
    stamps = _Stamps()
    with torch.inference_mode():
        hf.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n,
                    do_sample=False, streamer=stamps)
    times = stamps.times[1:]
    return (len(times) - 1) / (times[-1] - times[0])


# ---------------------------------------------------------------- throughput
def continuous(engine: Engine, prompts, params, arrivals=None) -> dict:
    """Run a workload through the engine; arrivals (seconds from start) default to all at 0.
    Returns generated tokens/s and the time to first token of every request."""
    arrivals = arrivals or [0.0] * len(prompts)
    pending = sorted(range(len(prompts)), key=lambda i: arrivals[i])
    added, first, tokens = {}, {}, 0
    t0 = time.perf_counter()
    while pending or engine.has_unfinished():
        now = time.perf_counter() - t0
        while pending and arrivals[pending[0]] <= now:
            i = pending.pop(0)
            added[engine.add_request(prompts[i], params[i])] = t0 + arrivals[i]
        if not engine.has_unfinished():
            time.sleep(min(0.01, max(0.0, arrivals[pending[0]] - now)))
            continue
        for out in engine.step():
            tokens += len(out.token_ids)
            if out.token_ids and out.request_id not in first:
                first[out.request_id] = time.perf_counter() - added[out.request_id]
    elapsed = time.perf_counter() - t0
    ttft = sorted(first.values())
    return {"tokens_per_s": tokens / elapsed, "seconds": elapsed, "tokens": tokens,
            "ttft_p50_s": ttft[len(ttft) // 2], "ttft_p99_s": ttft[min(len(ttft) - 1,
                                                                      int(0.99 * len(ttft)))],
            "preemptions": engine.stats["preemptions"]}


def sequential(engine: Engine, prompts, params) -> float:
    """One request at a time through the same engine: tokens/s."""
    t0, tokens = time.perf_counter(), 0
    for prompt, sp in zip(prompts, params, strict=True):
        tokens += engine.generate([prompt], sp)[0].completion_tokens
    return tokens / (time.perf_counter() - t0)


def left_pad(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def static_batch(model, prompts, max_tokens: list[int], batch: int, hf: bool = False) -> float:
    """Static batching: each batch runs until its longest request is done; tokens/s counts
    only the tokens requests asked for (the rest of each row's steps is waste)."""
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        ids, mask = left_pad(prompts[i:i + batch])
        steps = max(max_tokens[i:i + batch])
        with torch.inference_mode():
            if hf:
                model.generate(ids, attention_mask=mask, max_new_tokens=steps,
                               min_new_tokens=steps, do_sample=False, pad_token_id=0)
            else:
                static_generate(model, ids, steps, attention_mask=mask)
    return sum(max_tokens) / (time.perf_counter() - t0)


# ---------------------------------------------------------------- the run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small workload, for a smoke run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    requests, new_tokens, seq_sample = (16, 32, 4) if args.quick else (64, 128, 8)
    runs = 1 if args.quick else args.runs
    load_before = os.getloadavg()
    ours, hf = build_pair()
    engine = Engine(ours, None, max_num_seqs=64, max_num_batched_tokens=512, column_major=True)
    rng = random.Random(0)
    vocab = CONFIG["vocab_size"]
    prompts = [[rng.randrange(vocab) for _ in range(rng.randint(16, 48))]
               for _ in range(requests)]
    fixed = [SamplingParams(max_tokens=new_tokens, temperature=0, ignore_eos=True)] * requests
    log = print

    log(f"# engine benchmark: {args.threads} threads, load average {load_before[0]:.1f}")
    bw = bandwidth(5)
    log(f"bandwidth: read {bw['read_gb_s']:.1f} GB/s, copy {bw['copy_gb_s']:.1f} GB/s")

    # Batch-1 decode, engine and transformers in turns.
    one = prompts[0][:16]
    engine_decode_rate(engine, one, 8)  # warm-up
    hf_decode_rate(hf, one, 8)
    eng_rates, hf_rates = [], []
    for _ in range(max(runs, 5)):
        eng_rates.append(engine_decode_rate(engine, one, new_tokens))
        hf_rates.append(hf_decode_rate(hf, one, new_tokens))
    per_token = bytes_per_token(ours, 16 + new_tokens // 2)
    ceiling = bw["read_gb_s"] * 1e9 / per_token
    gemv = gemv_bandwidth(ours, 5)
    decode = {"engine_tok_s": median(eng_rates), "transformers_tok_s": median(hf_rates),
              "engine_runs": eng_rates, "transformers_runs": hf_rates,
              "bytes_per_token": per_token, "bandwidth_ceiling_tok_s": ceiling,
              "gemv_gb_s": gemv, "gemv_bound_tok_s": gemv * 1e9 / per_token}
    decode["speedup_vs_transformers"] = decode["engine_tok_s"] / decode["transformers_tok_s"]
    decode["fraction_of_bandwidth"] = decode["engine_tok_s"] / ceiling
    log(f"decode b=1: engine {decode['engine_tok_s']:.1f} tok/s, transformers "
        f"{decode['transformers_tok_s']:.1f}, ceiling {ceiling:.1f}")

    # 64 requests x 128 new tokens: continuous batching, sequential, static batching, in
    # rounds so that a change in machine load hits all three alike.
    lengths = [new_tokens] * requests
    cont_runs, seq_rates, static_rates = [], [], []
    for _ in range(runs):
        cont_runs.append(continuous(engine, prompts, fixed))
        seq_rates.append(sequential(engine, prompts[:seq_sample], fixed[:seq_sample]))
        static_rates.append(static_batch(ours, prompts, lengths, requests))
        log(f"continuous {cont_runs[-1]['tokens_per_s']:.1f}, sequential ({seq_sample} "
            f"requests) {seq_rates[-1]:.1f}, static batch of {requests} {static_rates[-1]:.1f} "
            "tok/s")
    cont = {k: median([r[k] for r in cont_runs]) for k in cont_runs[0]}
    seq, static = median(seq_rates), median(static_rates)
    hf_static = static_batch(hf, prompts, lengths, requests, hf=True)
    log(f"static batch of {requests} (transformers generate): {hf_static:.1f} tok/s")

    # Requests of uneven length: where static batching wastes its slots.
    mixed_len = [rng.randint(8, new_tokens) for _ in range(requests)]
    mixed = [SamplingParams(max_tokens=n, temperature=0, ignore_eos=True) for n in mixed_len]
    cont_mixed = continuous(engine, prompts, mixed)
    static_mixed = static_batch(ours, prompts, mixed_len, 16)
    log(f"uneven lengths: continuous {cont_mixed['tokens_per_s']:.1f}, static batches of 16 "
        f"{static_mixed:.1f} tok/s")

    # TTFT under load: Poisson arrivals at 80% of the measured request capacity.
    rate = 0.8 * cont["tokens_per_s"] / new_tokens
    clock, arrivals = 0.0, []
    for _ in range(requests):
        clock += rng.expovariate(rate)
        arrivals.append(clock)
    poisson = continuous(engine, prompts, fixed, arrivals)
    log(f"poisson {rate:.2f} req/s: ttft p50 {poisson['ttft_p50_s']:.3f}s "
        f"p99 {poisson['ttft_p99_s']:.3f}s")

    throughput = {
        "requests": requests, "new_tokens": new_tokens, "continuous": cont,
        "continuous_runs": [r["tokens_per_s"] for r in cont_runs],
        "sequential_runs": seq_rates, "static_batch_runs": static_rates,
        "sequential_tok_s": seq, "sequential_sampled_requests": seq_sample,
        "static_batch_tok_s": static, "transformers_static_batch_tok_s": hf_static,
        "speedup_vs_sequential": cont["tokens_per_s"] / seq,
        "speedup_vs_static": cont["tokens_per_s"] / static,
        "uneven": {"continuous_tok_s": cont_mixed["tokens_per_s"],
                   "static_batches_of_16_tok_s": static_mixed,
                   "speedup": cont_mixed["tokens_per_s"] / static_mixed},
    }
    ttft = {"burst_p50_s": cont["ttft_p50_s"], "burst_p99_s": cont["ttft_p99_s"],
            "poisson_rate_req_s": rate, "poisson_p50_s": poisson["ttft_p50_s"],
            "poisson_p99_s": poisson["ttft_p99_s"],
            "poisson_tok_s": poisson["tokens_per_s"]}
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
        "machine": {"threads": args.threads, "cpus": os.cpu_count(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "platform": platform.platform(), "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "load_average_before": load_before[0],
                    "load_average_after": os.getloadavg()[0]},
        "model": {**CONFIG, "parameters": sum(p.numel() for p in ours.parameters())},
        "bandwidth": bw, "decode_batch1": decode, "throughput": throughput, "ttft": ttft,
        "targets": {"decode_vs_transformers_1.3x": decode["speedup_vs_transformers"] >= 1.3,
                    "bandwidth_fraction_0.6": decode["fraction_of_bandwidth"] >= 0.6,
                    "continuous_vs_sequential_8x": throughput["speedup_vs_sequential"] >= 8},
    }
    write_results(args.out, result)
    print_table(result)


def write_results(path: Path, result: dict) -> None:
    """The JSON beside the benchmarks, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")


def print_table(r: dict) -> None:
    d, t, f = r["decode_batch1"], r["throughput"], r["ttft"]
    rows = [
        ("decode b=1, lmstack engine", f"{d['engine_tok_s']:.1f} tok/s",
         f"{d['speedup_vs_transformers']:.2f}x transformers (target 1.3x)"),
        ("decode b=1, transformers generate", f"{d['transformers_tok_s']:.1f} tok/s", ""),
        ("bandwidth ceiling (read GB/s / bytes per token)",
         f"{d['bandwidth_ceiling_tok_s']:.1f} tok/s",
         f"engine at {100 * d['fraction_of_bandwidth']:.0f}% (target 60%)"),
        ("torch fp32 matvec bound (its GB/s / bytes per token)",
         f"{d['gemv_bound_tok_s']:.1f} tok/s",
         (f"{d['gemv_gb_s']:.1f} GB/s; engine at "
          f"{100 * d['engine_tok_s'] / d['gemv_bound_tok_s']:.0f}%")),
        (f"{t['requests']} x {t['new_tokens']}: continuous batching",
         f"{t['continuous']['tokens_per_s']:.1f} tok/s",
         (f"{t['speedup_vs_sequential']:.1f}x sequential (target 8x), "
          f"{t['speedup_vs_static']:.2f}x static")),
        ("... sequential (one request at a time)", f"{t['sequential_tok_s']:.1f} tok/s", ""),
        ("... static batch (lmstack generate)", f"{t['static_batch_tok_s']:.1f} tok/s", ""),
        ("... static batch (transformers generate)",
         f"{t['transformers_static_batch_tok_s']:.1f} tok/s", ""),
        ("uneven lengths: continuous vs static batches of 16",
         (f"{t['uneven']['continuous_tok_s']:.1f} vs "
          f"{t['uneven']['static_batches_of_16_tok_s']:.1f} tok/s"),
         f"{t['uneven']['speedup']:.2f}x"),
        ("TTFT, all requests at once (p50 / p99)",
         f"{f['burst_p50_s']:.2f} / {f['burst_p99_s']:.2f} s", ""),
        (f"TTFT, Poisson {f['poisson_rate_req_s']:.2f} req/s (p50 / p99)",
         f"{f['poisson_p50_s']:.2f} / {f['poisson_p99_s']:.2f} s", ""),
    ]
    m = r["machine"]
    print(f"\n{m['threads']} threads, load average {m['load_average_before']:.1f} -> "
          f"{m['load_average_after']:.1f}; memory read {r['bandwidth']['read_gb_s']:.1f} GB/s\n")
    print("| measurement | result | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
