"""acc / acc_norm as lm-evaluation-harness defines them, few-shot prompts fixed by the seed,
ARC and a Chinese set through the whole path, and generative letter scoring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lmstack.evals import choice_metrics, evaluate_mc, few_shot_pool, load_questions
from lmstack.evals.generative_choice import evaluate_generative
from lmstack.evals.multiple_choice import build_prompts

ARC = Path(__file__).resolve().parents[3] / "shared" / "data" / "multiple_choice"
ZH = Path(__file__).parent / "data" / "zh_mc.jsonl"


def test_acc_norm_by_hand():
    # ll:        -2.0 (1 char)  -4.0 (4 chars)  -4.5 (9 chars)
    # ll / len:  -2.0           -1.0            -0.5   -> acc_norm picks the longest choice
    m = choice_metrics([-2.0, -4.0, -4.5], ["a", "bbbb", "ccccccccc"], gold=2)
    assert (m["pred"], m["pred_norm"], m["acc"], m["acc_norm"]) == (0, 2, 0.0, 1.0)
    z = math.exp(0) + math.exp(-2) + math.exp(-2.5)
    assert m["probs"] == pytest.approx([1 / z, math.exp(-2) / z, math.exp(-2.5) / z])
    # Characters, not bytes or tokens: a Chinese choice of 3 characters divides by 3.
    m = choice_metrics([-3.0, -1.2], ["一百度", "水"], gold=0)
    assert m["pred_norm"] == 0  # -1.0 > -1.2


def test_records_follow_the_definitions(tiny, tmp_path):
    model, tok = tiny
    questions = load_questions(ZH)
    out = evaluate_mc(model, tok, questions, shots=1, seed=3, jsonl=tmp_path / "q.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == len(questions) == out["n"]
    assert "沸点" in (tmp_path / "q.jsonl").read_text("utf-8")  # Chinese stays readable
    for r in rows:
        lls, choices = r["loglikelihoods"], r["choices"]
        pred_norm = max(range(len(lls)), key=lambda i: lls[i] / len(choices[i]))
        assert r["pred_norm"] == pred_norm
        assert r["acc"] == float(lls.index(max(lls)) == r["gold"])
        assert r["prompt"].count("Answer:") == 2  # one shot, then the question
    assert out["acc_norm"] == pytest.approx(sum(r["acc_norm"] for r in rows) / len(rows))
    lo, hi = out["acc_ci95"]
    assert lo <= out["acc"] <= hi


def test_few_shot_prompts_are_reproducible_for_a_seed():
    questions = load_questions(ZH)
    a = build_prompts(questions, 3, questions, seed=7)
    assert a == build_prompts(questions, 3, questions, seed=7)
    assert a != build_prompts(questions, 3, questions, seed=8)
    for q, prompt in zip(questions, a, strict=True):
        assert prompt.count(q.question) == 1  # never its own example
        assert prompt.endswith(f"Question: {q.question}\nAnswer:")
        assert prompt.count("\n\n") == 3


@pytest.mark.skipif(not ARC.is_dir(), reason="needs ../shared/data/multiple_choice")
def test_arc_slice_runs_zero_and_five_shot(tiny):
    model, tok = tiny
    test = ARC / "arc-easy" / "test.json"
    questions = load_questions(test, limit=3)
    assert few_shot_pool(test).name == "dev.json"
    pool = load_questions(few_shot_pool(test))
    for shots in (0, 5):
        out = evaluate_mc(model, tok, questions, shots=shots, pool=pool)
        assert out["n"] == 3 and 0 <= out["acc"] <= 1
        assert out["records"][0]["prompt"].count("Answer:") == shots + 1


def test_bad_files_are_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_questions(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1.*centerpiece"):
        load_questions(bad)


def test_generative_scoring_reads_the_letter():
    questions = load_questions(ZH)
    replies = iter(["B", "The answer is (A).", "C. 太阳", "I am not sure", "答案：C", "水"])
    out = evaluate_generative(lambda prompts: [next(replies) for _ in prompts], questions)
    assert [r["pred"] for r in out["records"]] == [1, 0, 2, None, 2, 0]
    assert out["acc"] == pytest.approx(5 / 6) and out["unreadable"] == 1
