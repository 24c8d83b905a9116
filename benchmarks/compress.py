"""Compression, measured: what pruning costs in perplexity and buys in speed on SmolLM2-135M,
a mixture of experts against a dense model of equal active parameters on tinyshakespeare, and
ONNX Runtime (fp32, int8) decoding against lmstack's engine.

Every comparison runs in one process, contestants in turns (medians of several rounds), so load
from other jobs hits them alike. Perplexity is on text the pruning never looked at (its
calibration reads another book): the opening letters of Frankenstein (Project Gutenberg, in
../shared/data).
Run: `.venv/bin/python benchmarks/compress.py` (about 45 minutes on 2 heavily loaded cores;
--quick: a smoke run of a few minutes whose numbers mean little).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import copy
import datetime as dt
import json
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lmstack
from lmstack.data import PackedSequences
from lmstack.engine import Engine, SamplingParams
from lmstack.evals.perplexity import perplexity
from lmstack.fileio import atomic_write_text
from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.models.generate import generate
from lmstack.quant.onnx_export import export_onnx, quantize_int8
from lmstack.quant.onnx_runtime import OnnxDecoderSession, logit_gap
from lmstack.quant.prune import prune_magnitude
from lmstack.quant.structured import keep_channels, keep_heads, shrink
from lmstack.train import Trainer, parse_config
from lmstack.train.objectives import CausalLM

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pretrain"
RESULTS = Path(__file__).parent / "results" / "compress.json"
THREADS = 2


def machine() -> dict:
    cpu, flags = platform.processor(), []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx")))
            break
    return {"cpu": cpu, "vector_flags": flags, "cores": os.cpu_count(), "threads": THREADS,
            "torch": torch.__version__, "platform": platform.platform()}


def held_out_text(chars: int) -> str:
    """Frankenstein after the Gutenberg header: text SmolLM2's tokenizer has no special claim on."""
    text = (DATA / "gutenberg" / "Frankenstein_84.txt").read_text(encoding="utf-8")
    start = text.find("_To Mrs. Saville, England._")  # the first letter, past the contents
    return text[max(0, start):][:chars]


def calibration_text() -> str:
    text = (DATA / "gutenberg" / "Pride-and-Prejudice_1342.txt").read_text(encoding="utf-8")
    return text[text.find("It is a truth universally acknowledged"):][:4000]


# ---------------------------------------------------------------- pruning on SmolLM2
def timed_decode(model, prompt: list[int], n: int) -> float:
    """Decode tokens/s of lmstack's static-cache greedy loop (prefill excluded)."""
    ids = torch.tensor([prompt])
    t0 = time.perf_counter()
    generate(model, ids, 1)
    t1 = time.perf_counter()
    generate(model, ids, n + 1)
    return n / max(time.perf_counter() - t1 - (t1 - t0), 1e-9)


@torch.inference_mode()
def timed_prefill(model, ids: torch.Tensor) -> float:
    t = time.perf_counter()
    model(ids, logits_to_keep=1)
    return ids.numel() / (time.perf_counter() - t)


def pruned_variants(model, tok):
    """(name, build) for each pruned model: built one at a time, so at most two 135M models
    (dense and one variant) are in memory on a machine other jobs share."""

    def magnitude(s):
        def build():
            pruned = copy.deepcopy(model)
            prune_magnitude(pruned, s)
            return pruned
        return build

    out = [(f"magnitude_{int(s * 100)}", magnitude(s)) for s in (0.3, 0.5, 0.7)]
    # Structured: scored by weights alone, and by activations on 512 calibration tokens from
    # another book (Pride and Prejudice), so the held-out text stays unseen.
    calibration = torch.tensor([tok.encode(calibration_text())[:512]])
    for suffix, calib in (("_weights", None), ("", calibration)):
        out.append((f"heads_33{suffix}",  # 1 of the 3 query heads per kv group
                     lambda c=calib: shrink(model, heads=keep_heads(model, 1 / 3, c))))
        for s in (0.3,) if calib is None else (0.3, 0.5):
            out.append((f"channels_{int(s * 100)}{suffix}", lambda s=s, c=calib: shrink(
                model, channels=keep_channels(model, s, c))))
    return out


def speed(model, prompt: list[int], chunk: torch.Tensor, n: int) -> dict:
    return {"decode": timed_decode(model, prompt, n), "prefill": timed_prefill(model, chunk)}


def pruning(model, tok, quick: bool, checkpoint) -> dict:
    """Perplexity and speed of each pruned variant; `checkpoint(results so far)` after each."""
    ids = tok.encode(held_out_text(3_000 if quick else 8_000))
    prompt, chunk, n = ids[:32], torch.tensor([ids[:256]]), 16 if quick else 24
    rounds = 2

    def measure(m) -> dict:
        t = time.perf_counter()
        ppl = perplexity(m, ids, seq_len=512, batch_size=4)
        return {"params": m.num_parameters(), "ppl": ppl["ppl"], "loss": ppl["loss"],
                "ppl_seconds": time.perf_counter() - t}

    out = {"dense": measure(model)}
    print(f"  dense: ppl {out['dense']['ppl']:.2f}", flush=True)
    for name, build in pruned_variants(model, tok):
        m = build().eval()
        out[name] = measure(m)
        # Speed against the dense model in turns (dense, variant, dense, ...): the ratio of
        # medians taken side by side survives the load better than absolute numbers.
        runs = [(speed(model, prompt, chunk, n), speed(m, prompt, chunk, n))
                for _ in range(rounds)]
        for kind in ("decode", "prefill"):
            ours = statistics.median(r[1][kind] for r in runs)
            out[name][f"{kind}_tok_s"] = ours
            out[name][f"{kind}_speedup"] = ours / statistics.median(r[0][kind] for r in runs)
        out[name]["ppl_ratio"] = out[name]["ppl"] / out["dense"]["ppl"]
        print(f"  {name}: ppl {out[name]['ppl']:.2f}, decode x{out[name]['decode_speedup']:.2f}"
              f", prefill x{out[name]['prefill_speedup']:.2f}", flush=True)
        del m
        checkpoint(out)
    return out


# ---------------------------------------------------------------- MoE vs dense
def char_data(seq_len: int) -> tuple[PackedSequences, PackedSequences, int]:
    """tinyshakespeare as bytes (it is ASCII): 90% to train on, the last 10% to validate."""
    text = (DATA / "tinyshakespeare.txt").read_bytes()
    ids = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    cut = int(0.9 * len(ids))
    return PackedSequences(ids[:cut], seq_len), PackedSequences(ids[cut:], seq_len), 256


def train_one(model, train, val, steps: int, out_dir: Path) -> dict:
    cfg = parse_config({
        "model": {"architecture": "LlamaForCausalLM", "config": model.config.to_dict()},
        "data": {"shards": str(out_dir), "seq_len": 128},
        "optimizer": {"lr": 2e-3}, "schedule": {"warmup_steps": 20},
        "training": {"out_dir": str(out_dir), "max_steps": steps, "micro_batch_size": 8,
                     "threads": THREADS, "log_every": max(1, steps // 8),
                     "eval_every": max(1, steps // 8),  # logged steps carry the time spent
                     "eval_batches": 8, "save_every": 10**9, "progress": False, "seed": 0}})
    trainer = Trainer(model, CausalLM(), train, cfg, val)
    result = trainer.fit()
    curve = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["val_loss"]) for r in curve if "val_loss" in r]
    elapsed = {r["step"]: r["elapsed"] for r in curve if "elapsed" in r}
    return {"val_loss": result["val_loss"], "seconds": result["elapsed"],
            "curve": [{"step": s, "val_loss": v, "elapsed": elapsed.get(s)} for s, v in evals]}


def active_params(model: LlamaForCausalLM) -> int:
    """Parameters one token runs through: the router and k experts, not all E."""
    cfg, total = model.config, model.num_parameters()
    if not cfg.n_experts:
        return total
    per_expert = 3 * cfg.hidden_size * cfg.intermediate_size
    return total - cfg.num_hidden_layers * (cfg.n_experts - cfg.experts_per_token) * per_expert


def loss_at(curve: list[dict], seconds: float) -> float | None:
    """The last validation loss measured within `seconds` of training."""
    within = [c["val_loss"] for c in curve if c["elapsed"] is not None
              and c["elapsed"] <= seconds]
    return within[-1] if within else None


def moe_vs_dense(steps: int) -> dict:
    train, val, vocab = char_data(128)
    base = {"vocab_size": vocab, "hidden_size": 128, "num_hidden_layers": 4,
            "num_attention_heads": 4, "max_position_embeddings": 256,
            "tie_word_embeddings": True}
    configs = {"dense": {**base, "intermediate_size": 512},
               "moe_4x2": {**base, "intermediate_size": 256, "n_experts": 4,
                           "experts_per_token": 2}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, c in configs.items():
            torch.manual_seed(0)
            model = LlamaForCausalLM(LlamaConfig(**c))
            out[name] = {"config": c, "params": model.num_parameters(),
                         "active_params": active_params(model),
                         **train_one(model, train, val, steps, Path(tmp) / name)}
            print(f"  {name}: val loss {out[name]['val_loss']:.3f} in "
                  f"{out[name]['seconds']:.0f} s", flush=True)
    budget = min(r["seconds"] for r in out.values())
    for r in out.values():
        r["val_loss_at_equal_time"] = loss_at(r["curve"], budget)
    out["equal_time_seconds"] = budget
    return out


# ---------------------------------------------------------------- ONNX Runtime vs lmstack
def onnx_vs_lmstack(model, tok, quick: bool) -> dict:
    prompt = tok.encode("The history of the printing press begins")
    n = 16 if quick else 32
    rounds = 2 if quick else 3
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        fp32 = export_onnx(model, Path(tmp) / "model.onnx")
        out["export_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        int8 = quantize_int8(fp32, Path(tmp) / "model_int8.onnx")
        out["quantize_seconds"] = time.perf_counter() - t
        out["fp32_mb"], out["int8_mb"] = fp32.stat().st_size / 1e6, int8.stat().st_size / 1e6
        sessions = {"onnx_fp32": OnnxDecoderSession(fp32, THREADS),
                    "onnx_int8": OnnxDecoderSession(int8, THREADS)}
        for name, session in sessions.items():  # the prompt, then its last 2 tokens after a past
            out[f"{name}_max_logit_gap"] = logit_gap(model, session, prompt[:-2], prompt[-2:])
        engine = Engine(model, tok, max_num_seqs=1)
        greedy = SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)

        def run_engine() -> list[int]:
            return engine.generate([prompt], greedy)[0].token_ids

        contestants = {"lmstack_engine": run_engine,
                       **{k: (lambda s=s: s.greedy(prompt, n)) for k, s in sessions.items()}}
        tokens, times = {}, {k: [] for k in contestants}
        for _ in range(rounds):
            for name, run in contestants.items():
                t = time.perf_counter()
                tokens[name] = run()
                times[name].append(time.perf_counter() - t)
        for name in contestants:
            out[name] = {"tok_s": n / statistics.median(times[name]),
                         "text": tok.decode(tokens[name])}
        base = out["lmstack_engine"]["tok_s"]
        for name in sessions:
            out[name]["vs_engine"] = out[name]["tok_s"] / base
        out["fp32_same_greedy_text"] = tokens["onnx_fp32"] == tokens["lmstack_engine"]
        out["int8_same_greedy_text"] = tokens["onnx_int8"] == tokens["lmstack_engine"]
        out["tokens_timed"] = n  # one prompt's prefill plus n decode steps, per run
    return out


def save(path: Path, report: dict, parts: str, load: dict) -> None:
    """Update this run's keys in the results file. Parts may run one at a time (--only), so
    the file is read just before writing: runs of different parts side by side keep each
    other's results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged |= report
    merged.setdefault("load_average", {})[parts] = load
    atomic_write_text(path, json.dumps(merged, indent=2, default=float) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--moe-steps", type=int, default=600)
    ap.add_argument("--only", choices=["pruning", "moe", "onnx"], action="append")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(THREADS)
    parts = args.only or ["pruning", "moe", "onnx"]
    report = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": machine(), "quick": args.quick}
    load = {"start": os.getloadavg()}
    t0 = time.perf_counter()
    if "pruning" in parts or "onnx" in parts:
        model, tok = lmstack.load("smollm2")
        model.eval()
    if "pruning" in parts:
        print("pruning SmolLM2-135M", flush=True)
        report["pruning"] = pruning(model, tok, args.quick, lambda partial: save(
            args.out, {**report, "pruning": partial}, ",".join(parts),
            {**load, "now": os.getloadavg()}))
    if "moe" in parts:
        print("MoE vs dense on tinyshakespeare", flush=True)
        report["moe_vs_dense"] = moe_vs_dense(20 if args.quick else args.moe_steps)
    if "onnx" in parts:
        print("ONNX Runtime vs lmstack's engine", flush=True)
        report["onnx"] = onnx_vs_lmstack(model, tok, args.quick)
    load |= {"end": os.getloadavg(), "seconds": time.perf_counter() - t0}
    save(args.out, report, ",".join(parts), load)
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1,
                     default=float)[:4000])
    return 0 if all(math.isfinite(r.get("ppl", 0)) for r in report.get("pruning", {}).values()
                    ) else 1


if __name__ == "__main__":
    raise SystemExit(main())
