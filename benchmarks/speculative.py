"""Speculative decoding by prompt lookup on the real model: batch-1 decode with and without it.

SmolLM2-135M-Instruct in lmstack's engine, two engines side by side in one process on the
same weights, taking turns: one plain, one with speculative_tokens=K. Greedy outputs must be
the same tokens; what changes is forward passes per token. Three kinds of prompt: answers
that quote their prompt (extraction and copying, where lookup finds long runs), a RAG-style
answer, and free chat (where it finds little, and pays only the cost of checking).
Run: `.venv/bin/python benchmarks/speculative.py` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import torch
from engine import write_results  # benchmarks/engine.py (first on sys.path)
from real_model import cpu_name_and_flags, resolve

import lmstack
from lmstack.engine import Engine, SamplingParams
from lmstack.tokenizer.chat_prompt import chat_prompt_ids

RESULTS = Path(__file__).parent / "results" / "speculative.json"
PASSAGE = ("Paged attention stores the keys and values of every sequence in fixed-size "
           "blocks, like pages of virtual memory, so that memory is allocated on demand and "
           "shared between sequences that start with the same prompt.")
PROMPTS = {
    "copy": f"Repeat the following paragraph exactly, word for word:\n\n{PASSAGE}",
    "rag": f"Source [1]: {PASSAGE}\n\nUsing only source [1], explain how paged attention "
           "stores keys and values. Quote the source and cite it as [1].",
    "chat": "Write a short poem about the sea at night.",
}


def decode_rate(engine: Engine, prompt: list[int], n: int) -> tuple[float, list[int], int]:
    """(generated tokens/s after the first token, the tokens, forward passes) of one request."""
    steps = engine.stats["steps"]
    engine.add_request(prompt, SamplingParams(max_tokens=n, temperature=0))
    stamps, tokens = [], []
    while engine.has_unfinished():
        for out in engine.step():
            stamps.append(time.perf_counter())
            tokens += out.token_ids
    rate = (len(tokens) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return rate, tokens, engine.stats["steps"] - steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--k", type=int, default=4, help="guessed tokens per step")
    ap.add_argument("--model", default="smollm2", help="a short name, GGUF file or HF folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    model, tok = lmstack.load(resolve(args.model))
    engines = {"plain": Engine(model, tok, enable_prefix_caching=False),
               "speculative": Engine(model, tok, enable_prefix_caching=False,
                                     speculative_tokens=args.k)}
    rows = {}
    for name, text in PROMPTS.items():
        prompt = chat_prompt_ids(tok, [{"role": "user", "content": text}])
        rates: dict[str, list[float]] = {e: [] for e in engines}
        outs, steps = {}, {}
        for _ in range(args.runs):
            for e, engine in engines.items():
                rate, outs[e], steps[e] = decode_rate(engine, prompt, args.new_tokens)
                rates[e].append(rate)
        assert outs["plain"] == outs["speculative"], f"{name}: speculation changed the output"
        plain, spec = (statistics.median(rates[e]) for e in engines)
        rows[name] = {"plain_tok_s": plain, "speculative_tok_s": spec, "speedup": spec / plain,
                      "tokens": len(outs["plain"]), "steps_plain": steps["plain"],
                      "steps_speculative": steps["speculative"]}
        print(f"{name:5s}: {plain:5.1f} -> {spec:5.1f} tok/s ({spec / plain:.2f}x), "
              f"{steps['plain']} -> {steps['speculative']} forward passes "
              f"for {len(outs['plain'])} tokens")
    stats = engines["speculative"].stats
    write_results(args.out, {
        "date": dt.date.today().isoformat(), "cpu": cpu_name_and_flags(),
        "threads": args.threads, "torch": torch.__version__, "model": args.model,
        "k": args.k, "runs": args.runs, "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0], "prompts": rows,
        "acceptance": stats["speculative_accepted"] / max(1, stats["speculative_proposed"]),
    })


if __name__ == "__main__":
    main()
