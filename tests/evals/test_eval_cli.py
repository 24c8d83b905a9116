"""`lmstack eval mc` and `lmstack eval report` as a user runs them, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import run_lmstack

ZH = Path(__file__).parent / "data" / "zh_mc.jsonl"


def test_eval_mc_prints_both_metrics_and_writes_jsonl(tiny_folder, tmp_path):
    out = tmp_path / "scores.jsonl"
    r = run_lmstack("eval", "mc", str(tiny_folder), "--data", str(ZH), "--shots", "2",
                    "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "acc_norm" in r.stdout and "2-shot, 6 questions" in r.stdout
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(rows) == 6 and len(rows[0]["loglikelihoods"]) == 4


def test_eval_mc_user_errors_are_one_line(tiny_folder, tmp_path):
    r = run_lmstack("eval", "mc", str(tiny_folder), "--data", str(tmp_path / "none.jsonl"))
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: no such file") and "\n" not in r.stderr.strip()
    r = run_lmstack("eval", "mc", str(tiny_folder), "--data", str(ZH), "--shots", "9")
    assert r.returncode == 2 and "example pool" in r.stderr


def test_eval_report_writes_markdown_and_plot(tiny_folder, tmp_path):
    text = tmp_path / "held_out.txt"
    text.write_text("Question: What is the capital of France? Answer: Paris. " * 20)
    r = run_lmstack("eval", "report", str(tiny_folder), "--out", str(tmp_path / "card"),
                    "--data", str(ZH), "--shots", "0,1", "--text", str(text))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "card" / "report.md").read_text("utf-8")
    assert "perplexity" in md and "| zh_mc | 1 | 6 |" in md and "report.png" in md
    assert (tmp_path / "card" / "report.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "card" / "results.json").read_text("utf-8"))
    assert set(results["mc"]["zh_mc"]) == {"0", "1"}
