"""Demo stage `eval` (opt-in: `--stages eval`): the report card of the demo's model on a small
ARC-Easy slice, scored as lm-evaluation-harness scores multiple choice."""

from __future__ import annotations

from typing import Any

from lmstack.demo.corpus import find_shared_data
from lmstack.demo.registry import Stage


def stage_eval(run: Any) -> None:
    """Score the first questions of ARC-Easy at 0 and 1 shots (seconds for a tiny model) and
    leave the report card (markdown, plot) in `eval/` under the demo's output folder."""
    import lmstack
    from lmstack.evals import few_shot_pool, load_questions
    from lmstack.evals.report import report_card

    settings = run.settings("eval", {"questions": 20, "shots": (0, 1)})
    folder, shared = run.artifacts.get("model"), find_shared_data()
    if folder is None or shared is None:
        run.section("Report card", "Skipped: it needs the trained model folder and "
                    "../shared/data (for ARC-Easy).")
        return
    test = shared / "multiple_choice" / "arc-easy" / "test.json"
    sets = {"arc-easy": (load_questions(test, limit=settings["questions"]),
                         load_questions(few_shot_pool(test)))}
    model, tokenizer = lmstack.load(folder)
    path = report_card(model, tokenizer, "demo model", run.out / "eval", sets,
                       settings["shots"])
    body = path.read_text(encoding="utf-8").split("\n", 1)[1].replace("](report.png)",
                                                                        "](eval/report.png)")
    run.console.print(f"report card: {path}")
    run.section("Report card", body + "\nA model trained for minutes on one corpus sits near "
                "chance (25% for four options); the same command on SmolLM2 is in the README.")


STAGE = Stage("eval", 50, stage_eval, "report card: ARC-Easy slice, acc / acc_norm, calibration",
              needs=("model",), default=False)
