"""The report card: the evaluations that apply to a model, in one markdown page with plots.

Follows the model-card habit (Mitchell et al. 2019) of one page to compare models on; the
calibration panel is a reliability diagram with expected calibration error (Guo et al. 2017).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmstack.evals.multiple_choice import MCQuestion, evaluate_mc
from lmstack.evals.perplexity import text_perplexity
from lmstack.fileio import atomic_write, atomic_write_text


def calibration(records: Sequence[dict], bins: int = 10) -> dict[str, Any]:
    """Reliability of the choice probabilities: records grouped by the probability given to the
    predicted choice (the highest); per bin the mean confidence and the accuracy; ECE is the
    count-weighted mean |accuracy - confidence|."""
    table = [{"lo": b / bins, "hi": (b + 1) / bins, "n": 0, "conf": 0.0, "acc": 0.0}
             for b in range(bins)]
    for r in records:
        conf = max(r["probs"])
        row = table[min(bins - 1, int(conf * bins))]
        row["n"] += 1
        row["conf"] += conf
        row["acc"] += r["acc"]
    total = sum(row["n"] for row in table)
    ece = 0.0
    for row in table:
        if row["n"]:
            row["conf"] /= row["n"]
            row["acc"] /= row["n"]
            ece += row["n"] / total * abs(row["acc"] - row["conf"])
    return {"bins": table, "ece": ece, "n": total}


def _plot(mc: dict[str, dict[int, dict]], cal: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, by_shots in mc.items():
        shots = sorted(by_shots)
        for key, style in (("acc", "-o"), ("acc_norm", "--s")):
            left.plot(shots, [by_shots[s][key] for s in shots], style, label=f"{name} {key}")
    left.set(xlabel="shots", ylabel="accuracy", title="accuracy per shot count", ylim=(0, 1))
    left.legend(fontsize=8)
    used = [b for b in cal["bins"] if b["n"]]
    right.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    right.bar([b["lo"] for b in used], [b["acc"] for b in used], width=0.1, align="edge",
              alpha=0.6, edgecolor="black", label="accuracy in bin")
    right.plot([b["conf"] for b in used], [b["acc"] for b in used], "o", color="black")
    right.set(xlabel="probability of the chosen answer", ylabel="accuracy", xlim=(0, 1),
              ylim=(0, 1), title=f"calibration (ECE {cal['ece']:.3f}, n={cal['n']})")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def report_card(
    model: Any,
    tokenizer: Any,
    name: str,
    out: str | Path,
    mc_sets: dict[str, tuple[Sequence[MCQuestion], Sequence[MCQuestion]]],
    shots: Sequence[int] = (0, 5),
    text: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Run every evaluation given (perplexity on `text`; each multiple-choice set at each shot
    count, as (questions, few-shot pool)) and write report.md, report.png and results.json
    into `out`. Returns the markdown's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"model": name, "mc": {}}
    lines = [f"# Report card: {name}", ""]
    if text:
        t = time.perf_counter()
        ppl = text_perplexity(model, tokenizer, text, seq_len=256)
        results["perplexity"] = {**ppl, "seconds": time.perf_counter() - t}
        lines += ["## Held-out perplexity", "",
                  (f"{ppl['tokens']:,} tokens: perplexity {ppl['ppl']:.2f} per token, "
                  f"{ppl['bits_per_char']:.3f} bits per character."), ""]
    mc: dict[str, dict[int, dict]] = {}
    records = []
    rows = ["| set | shots | n | acc (95% CI) | acc_norm (95% CI) | seconds |",
            "|---|---|---|---|---|---|"]
    for set_name, (questions, pool) in mc_sets.items():
        for k in shots:
            t = time.perf_counter()
            r = evaluate_mc(model, tokenizer, questions, shots=k, pool=pool,
                            on_progress=on_progress)
            seconds = time.perf_counter() - t
            records += r.pop("records")
            mc.setdefault(set_name, {})[k] = {**r, "seconds": seconds}
            rows.append(f"| {set_name} | {k} | {r['n']} | {r['acc']:.3f} "
                        f"({r['acc_ci95'][0]:.2f}-{r['acc_ci95'][1]:.2f}) | "
                        f"{r['acc_norm']:.3f} ({r['acc_norm_ci95'][0]:.2f}-"
                        f"{r['acc_norm_ci95'][1]:.2f}) | {seconds:.0f} |")
    results["mc"] = {s: {str(k): v for k, v in d.items()} for s, d in mc.items()}
    if mc:
        cal = calibration(records)
        results["calibration"] = cal
        _plot(mc, cal, out / "report.png", name)
        lines += ["## Multiple choice (log-likelihood, as lm-evaluation-harness)", "",
                  ("acc: the choice with the highest log-likelihood; acc_norm: the highest "
                  "log-likelihood per character of the choice."), "", *rows, "",
                  "![accuracy per shot count and calibration](report.png)", "",
                  (f"Expected calibration error of the choice probabilities (softmax over "
                  f"the choices' log-likelihoods, all sets and shots): {cal['ece']:.3f}."), ""]
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, ensure_ascii=False))
    atomic_write_text(out / "report.md", "\n".join(lines))
    return out / "report.md"
