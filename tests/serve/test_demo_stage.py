"""The demo's serving stage on a tiny model: it serves, asks through openai, and reports."""

from __future__ import annotations

from rich.console import Console

from lmstack.demo import DemoRun
from lmstack.serve.demo_stage import QUESTION, stage_serve


def test_stage_serve_reports_question_answer_and_latency(lm_folder, tmp_path):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    run.artifacts["model"] = lm_folder
    stage_serve(run)
    (section,) = run.sections
    assert section.startswith("## Serving") and QUESTION in section
    assert "Time to first token" in section and "64 tokens" in section


def test_stage_serve_skips_without_a_model(tmp_path):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    stage_serve(run)
    assert "Skipped" in run.sections[0]
