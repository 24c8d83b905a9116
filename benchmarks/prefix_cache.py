"""Prefix caching on the real model: time to first token with and without the cache.

SmolLM2-135M-Instruct in lmstack's engine, two engines side by side in one process (the same
weights; one with enable_prefix_caching=False), taking turns on the same prompts:
- a 10-turn conversation, each turn's prompt the whole history rendered by the chat template
  (the replies are the model's own greedy ones, so both engines see identical prompts);
- RAG-shaped prompts: one fixed block of instructions, then different retrieved passages and
  a question per request, so only the instructions are shared.
Greedy outputs are compared as well: the cache must not change them.
Run: `.venv/bin/python benchmarks/prefix_cache.py` (about 3 minutes on 2 cores).
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

RESULTS = Path(__file__).parent / "results" / "prefix_cache.json"
SYSTEM = ("You are a patient teaching assistant for a course on large language models. "
          "Answer in two or three sentences, define any term you use, and say so when a "
          "question is outside the course.")
QUESTIONS = [
    "What is a token?", "What does attention compute?", "Why do we cache keys and values?",
    "What is a KV block?", "What is continuous batching?", "What is prefix caching?",
    "What is quantization?", "What is LoRA?", "What is a chat template?",
    "How do I pick a learning rate?",
]
INSTRUCTIONS = ("Answer the question using only the numbered sources below. Cite each claim "
                "with its source number in square brackets, like [2]. If the sources do not "
                "contain the answer, say that it is not in the documents. Keep the answer "
                "short, quote exact figures, and never invent a source number. " * 3)
PASSAGES = [
    "The printing press spread across Europe within fifty years of its invention.",
    "Paged attention stores keys and values in fixed-size blocks, like virtual memory.",
    "Tokenizers split text into subword units learned from a corpus.",
    "Rotary embeddings rotate query and key vectors by position-dependent angles.",
    "A learning-rate warm-up avoids large updates while statistics are still noisy.",
    "Low-rank adapters train two small matrices beside each frozen weight.",
]


def first_token_seconds(engine: Engine, prompt: list[int], n: int) -> tuple[float, list[int]]:
    """(seconds to the first generated token, the greedy tokens) of one request alone."""
    t0 = time.perf_counter()
    rid = engine.add_request(prompt, SamplingParams(max_tokens=n, temperature=0))
    ttft, tokens = None, []
    while engine.has_unfinished():
        for out in engine.step():
            if out.request_id == rid and out.token_ids:
                ttft = ttft or time.perf_counter() - t0
                tokens += out.token_ids
    return ttft, tokens


def conversation(engines: dict[str, Engine], tok, turns: int, n: int) -> dict:
    messages = [{"role": "system", "content": SYSTEM}]
    rows = []
    for q in QUESTIONS[:turns]:
        messages.append({"role": "user", "content": q})
        prompt = chat_prompt_ids(tok, messages)
        row = {"prompt_tokens": len(prompt)}
        replies = {}
        for name, engine in engines.items():
            row[name], replies[name] = first_token_seconds(engine, prompt, n)
        assert len(set(map(tuple, replies.values()))) == 1, "the cache changed the output"
        messages.append({"role": "assistant", "content": tok.decode(replies["cached"],
                                                                    skip_special_tokens=True)})
        rows.append(row)
    return summarize(rows)


def rag(engines: dict[str, Engine], tok, requests: int, n: int) -> dict:
    rows = []
    for i in range(requests):
        sources = "\n".join(f"[{j + 1}] {PASSAGES[(i + j) % len(PASSAGES)]}" for j in range(3))
        prompt = tok.encode(f"{INSTRUCTIONS}\n\nSources:\n{sources}\n\nQuestion: "
                            f"{QUESTIONS[i % len(QUESTIONS)]}\nAnswer:")
        row = {"prompt_tokens": len(prompt)}
        outs = {}
        for name, engine in engines.items():
            row[name], outs[name] = first_token_seconds(engine, prompt, n)
        assert len(set(map(tuple, outs.values()))) == 1, "the cache changed the output"
        rows.append(row)
    return summarize(rows[1:])  # the first request only fills the cache


def summarize(rows: list[dict]) -> dict:
    later = rows[1:] if len(rows) > 1 else rows
    cached = statistics.median(r["cached"] for r in later)
    plain = statistics.median(r["no cache"] for r in later)
    return {"rows": rows, "median_ttft_cached_s": cached, "median_ttft_no_cache_s": plain,
            "speedup": plain / cached,
            "last_turn_speedup": rows[-1]["no cache"] / rows[-1]["cached"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--model", default="smollm2", help="a short name, GGUF file or HF folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    model, tok = lmstack.load(resolve(args.model))
    engines = {"cached": Engine(model, tok, max_num_seqs=4),
               "no cache": Engine(model, tok, max_num_seqs=4, enable_prefix_caching=False)}
    for engine in engines.values():  # warm-up
        first_token_seconds(engine, tok.encode("Hello there, how are you?"), 2)
    chat = conversation(engines, tok, args.turns, args.new_tokens)
    retrieval = rag(engines, tok, 6, 8)
    stats = engines["cached"].stats
    result = {
        "date": dt.date.today().isoformat(), "cpu": cpu_name_and_flags(),
        "threads": args.threads, "torch": torch.__version__, "model": args.model,
        "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
        "conversation": chat, "rag": retrieval,
        "hit_rate": stats["prefix_cache_hit_rate"],
        "targets": {"conversation_ttft_2x": chat["speedup"] >= 2},
    }
    write_results(args.out, result)
    print(f"{args.turns}-turn chat: TTFT median {chat['median_ttft_no_cache_s'] * 1e3:.0f} ms "
          f"-> {chat['median_ttft_cached_s'] * 1e3:.0f} ms with the cache "
          f"({chat['speedup']:.1f}x; last turn {chat['last_turn_speedup']:.1f}x, "
          f"{chat['rows'][-1]['prompt_tokens']} prompt tokens)")
    print(f"RAG prompts: TTFT median {retrieval['median_ttft_no_cache_s'] * 1e3:.0f} ms -> "
          f"{retrieval['median_ttft_cached_s'] * 1e3:.0f} ms ({retrieval['speedup']:.1f}x); "
          f"hit rate {stats['prefix_cache_hit_rate']:.0%}")


if __name__ == "__main__":
    main()
