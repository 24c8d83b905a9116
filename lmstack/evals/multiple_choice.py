"""Multiple-choice evaluation by the log-likelihood of each choice, as lm-evaluation-harness does.

Follows the harness's `multiple_choice` output type and its ARC task: prompt "Question: q\\nAnswer:",
each choice scored as the continuation " choice"; `acc` takes the highest summed log-likelihood,
`acc_norm` the highest log-likelihood divided by the choice's length in characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmstack.evals.loglikelihood import encode_pair, loglikelihoods
from lmstack.evals.stats import wilson_interval
from lmstack.fileio import atomic_write_text
from lmstack.prompting.fewshot import Example, FewShotTemplate, select_examples

# The harness's ARC prompt; the choice follows after one space (its target_delimiter).
ARC_TEMPLATE = FewShotTemplate("Question: {question}\nAnswer:", " ", "\n\n")


@dataclass(frozen=True)
class MCQuestion:
    question: str
    choices: list[str]
    gold: int


def load_questions(path: str | Path, limit: int | None = None) -> list[MCQuestion]:
    """JSON lines `{"centerpiece": question, "options": [...], "correct_options_idx": [i]}`
    (the shape of ../shared/data/multiple_choice/arc-*/*.json); `limit` keeps the first n."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = MCQuestion(row["centerpiece"], list(row["options"]),
                           int(row["correct_options_idx"][0]))
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
            raise ValueError(f"{path}:{number}: not a multiple-choice record ({e}); each line "
                             "needs centerpiece, options and correct_options_idx") from None
        if not 0 <= q.gold < len(q.choices):
            raise ValueError(f"{path}:{number}: correct_options_idx {q.gold} is not an option")
        out.append(q)
        if limit and len(out) >= limit:
            break
    if not out:
        raise ValueError(f"{path} holds no questions")
    return out


def few_shot_pool(path: str | Path) -> Path:
    """Where k-shot examples come from: dev.json beside the file when there is one (the harness
    draws them from a split other than the scored one), else the file itself."""
    dev = Path(path).with_name("dev.json")
    return dev if dev.is_file() and dev != Path(path) else Path(path)


def choice_metrics(lls: Sequence[float], choices: Sequence[str], gold: int) -> dict[str, Any]:
    """acc and acc_norm for one question, as the harness's process_results computes them:
    pred = argmax ll; pred_norm = argmax ll / len(choice) (characters of the choice text,
    without the leading space). probs: softmax over the choices, for calibration."""
    norm = [ll / len(c) for ll, c in zip(lls, choices, strict=True)]
    pred = max(range(len(lls)), key=lambda i: lls[i])  # first maximum, as np.argmax
    pred_norm = max(range(len(norm)), key=lambda i: norm[i])
    top = max(lls)
    weights = [math.exp(ll - top) for ll in lls]
    probs = [w / sum(weights) for w in weights]
    return {"pred": pred, "pred_norm": pred_norm, "acc": float(pred == gold),
            "acc_norm": float(pred_norm == gold), "probs": probs}


def summarize(records: list[dict], **extra: Any) -> dict[str, Any]:
    """Mean acc / acc_norm over per-question records, with 95% Wilson intervals."""
    n = len(records)
    out: dict[str, Any] = {"n": n, **extra}
    for key in ("acc", "acc_norm"):
        if records and key in records[0]:
            hits = sum(r[key] for r in records)
            out[key] = hits / n
            out[f"{key}_ci95"] = list(wilson_interval(hits, n))
    return out


def build_prompts(questions: Sequence[MCQuestion], shots: int, pool: Sequence[MCQuestion],
                  seed: int, template: FewShotTemplate = ARC_TEMPLATE,
                  selection: str = "random") -> list[str]:
    """One context per question: k solved examples from `pool`, then the question."""
    examples = [Example(p.question, p.choices[p.gold]) for p in pool]
    return [template.render(q.question, select_examples(examples, shots, selection, seed, i,
                                                        exclude=q.question))
            for i, q in enumerate(questions)]


def evaluate_mc(
    model: Any,
    tokenizer: Any,
    questions: Sequence[MCQuestion],
    shots: int = 0,
    pool: Sequence[MCQuestion] = (),
    seed: int = 1234,
    selection: str = "random",
    on_progress: Callable[[int], None] | None = None,
    jsonl: str | Path | None = None,
) -> dict[str, Any]:
    """Score every choice of every question by log-likelihood; acc and acc_norm over the set.
    `on_progress(n)` is called as n more choices are scored; `jsonl` gets one line per question
    (prompt, choices, log-likelihoods, probabilities, predictions, gold)."""
    contexts = build_prompts(questions, shots, pool or questions, seed, selection=selection)
    requests, owner = [], []
    for qi, (q, ctx) in enumerate(zip(questions, contexts, strict=True)):
        for c in q.choices:
            requests.append(encode_pair(tokenizer, ctx, ARC_TEMPLATE.answer_delimiter + c))
            owner.append(qi)
    scored = loglikelihoods(model, requests, on_progress=on_progress)
    records = []
    for qi, (q, ctx) in enumerate(zip(questions, contexts, strict=True)):
        lls = [s[0] for s, o in zip(scored, owner, strict=True) if o == qi]
        records.append({"index": qi, "question": q.question, "choices": q.choices,
                        "gold": q.gold, "loglikelihoods": lls,
                        **choice_metrics(lls, q.choices, q.gold), "prompt": ctx})
    if jsonl:
        write_jsonl(jsonl, records)
    return {**summarize(records, shots=shots, seed=seed), "records": records}


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    """One JSON object per line, all or nothing (a temporary file, then renamed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
