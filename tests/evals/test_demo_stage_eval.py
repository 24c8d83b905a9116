"""The opt-in demo stage `eval` leaves a report card section for the demo's model."""

from __future__ import annotations

import pytest
from rich.console import Console

from lmstack.demo.corpus import find_shared_data
from lmstack.demo.registry import select_stages
from lmstack.demo.run import DemoRun
from lmstack.demo.stage_eval import stage_eval


def test_eval_stage_is_opt_in():
    assert "eval" not in [s.name for s in select_stages(None)]
    assert [s.name for s in select_stages("eval")] == ["eval"]


@pytest.mark.skipif(find_shared_data() is None, reason="needs ../shared/data for ARC-Easy")
def test_eval_stage_writes_a_report_card(tiny_folder, tmp_path):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True),
                  options={"eval": {"questions": 4, "shots": (0, 1)}})
    run.artifacts["model"] = tiny_folder
    stage_eval(run)
    assert (tmp_path / "eval" / "report.png").is_file()
    section = run.sections[-1]
    assert section.startswith("## Report card") and "| arc-easy | 1 | 4 |" in section
    assert "](eval/report.png)" in section
