"""Tool calling before and after the tool-use LoRA: held-out synthetic scores and BFCL.

Trains SmolLM2-135M-Instruct with the demo's recipe (lmstack.demo.toolcall; change fields
with --recipe JSON) or takes an adapter the demo stage saved (--adapter), and scores the base
model and base + adapter, the latter loaded back from its folder as `lmstack agent eval
--adapter` loads it, on (1) held-out synthetic tool requests (seed 1) and (2) BFCL
live_simple / multiple / irrelevance (../shared/data/function_calling), each free and
constrained (tool_choice="required"). Both models see the tools through the same "tool_use"
template. Writes benchmarks/results/toolcall.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from real_model import cpu_name_and_flags  # benchmarks/real_model.py (first on sys.path)

import lmstack
from lmstack.agent.synthetic import make_cases
from lmstack.demo.stage_toolcall import score_both
from lmstack.demo.toolcall import ToolcallRecipe, train_toolcall, with_tool_template
from lmstack.engine import AsyncEngine, Engine
from lmstack.engine.chat_model import EngineChatModel
from lmstack.eval_cli import adapted_chat_model
from lmstack.evals.function_calling import evaluate, load_cases
from lmstack.fileio import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "toolcall.json"
BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "function_calling"
CATEGORIES = ("live_simple", "multiple", "irrelevance")


def bfcl(model: torch.nn.Module, tokenizer, limit: int, workers: int = 16) -> dict:
    """BFCL accuracy free and constrained, `workers` cases decoded in one continuous batch."""
    cases = [c for cat in CATEGORIES for c in load_cases(BFCL, cat, limit)]
    engine = AsyncEngine(Engine(model, tokenizer, max_num_seqs=workers))
    try:
        chat = EngineChatModel(engine)
        return {mode: {k: v for k, v in evaluate(chat, cases, mode == "constrained",
                                                 workers=workers).items() if k != "records"}
                for mode in ("free", "constrained")}
    finally:
        engine.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="{}", help="ToolcallRecipe fields to change, as JSON")
    p.add_argument("--held-out", type=int, default=60)
    p.add_argument("--bfcl-limit", type=int, default=15, help="cases per BFCL category")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--adapter", type=Path, help="score this adapter folder (one the demo "
                   "stage saved with the same recipe) instead of training one")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    recipe = dataclasses.replace(ToolcallRecipe(), **json.loads(args.recipe))
    model, tokenizer = lmstack.load("smollm2")
    tokenizer = with_tool_template(tokenizer)
    cases = make_cases(args.held_out, seed=1, zh_share=recipe.zh_share)
    scores = {"before": {"synthetic": score_both(model, tokenizer, cases),
                         "bfcl": bfcl(model, tokenizer, args.bfcl_limit)}}
    with tempfile.TemporaryDirectory() as tmp:
        info = None
        if args.adapter is None:
            info = train_toolcall(model, tokenizer, recipe, Path(tmp), threads=args.threads)
        tuned = adapted_chat_model("smollm2", args.adapter or Path(tmp) / "adapter")
        scores["after"] = {"synthetic": score_both(tuned.engine.model, tuned.tokenizer, cases),
                           "bfcl": bfcl(tuned.engine.model, tuned.tokenizer, args.bfcl_limit)}
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {**cpu_name_and_flags(), "threads": args.threads,
                          "load_avg_1m": [load_before, os.getloadavg()[0]]},
              "recipe": dataclasses.asdict(recipe), "held_out": args.held_out,
              "bfcl_limit": args.bfcl_limit,
              "adapter": str(args.adapter) if args.adapter else "trained here",
              "training": info and {k: info[k] for k in ("steps", "seconds", "examples", "rows",
                                                         "tokens", "trainable")},
              "loss": info and [info["losses"][0], info["losses"][-1]], **scores}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for when in ("before", "after"):
        for mode in ("free", "constrained"):
            s, b = scores[when]["synthetic"][mode], scores[when]["bfcl"][mode]["accuracy"]
            print(f"{when} {mode}: valid {s['valid_calls']:.0%}, correct "
                  f"{s['correct_answers']:.0%}; BFCL {b}", flush=True)
    trained = f"training {info['seconds']:.0f} s" if info else f"adapter {args.adapter}"
    print(f"wrote {args.out}; {trained}; load "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M')}")


if __name__ == "__main__":
    main()
