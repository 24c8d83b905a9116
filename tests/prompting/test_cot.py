"""Answer extraction on real SmolLM2-135M-Instruct outputs (benchmarks/evals_smollm2.py, its
arithmetic run and `--collect`), each labelled by hand with the answer the text states: a number,
or the option index for letter answers; null where it states none (cut off before an answer, or
a letter naming one option next to another option's text), which no extractor can recover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmstack.prompting import extract_choice, extract_number

CORPUS = Path(__file__).parent / "data" / "smollm2_outputs.jsonl"


def corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]


def extract(row: dict):
    if row["kind"] == "choice":
        return extract_choice(row["output"], row["choices"])
    return extract_number(row["output"])


def test_recovers_the_stated_answer_from_real_outputs():
    rows = [r for r in corpus() if r["answer"] is not None]
    assert len(rows) >= 30
    assert {r["kind"] for r in rows} == {"number", "choice"}
    hits = [extract(r) == r["answer"] for r in rows]
    misses = [(r["answer"], r["output"][-60:]) for r, ok in zip(rows, hits, strict=True)
              if not ok]
    assert sum(hits) / len(rows) >= 0.9, misses


@pytest.mark.parametrize(("text", "want"), [
    ("5 + 3 = 8\nThe answer is 8.", "8"),
    ("#### 1,200", "1200"),
    ("So the total is $45.00", "45"),
    ("The answer is: **12**", "12"),
    ("\\boxed{7} and then 9", "7"),
    ("答案是 6。", "6"),
    ("He has 3 bags of 4, 12 in all. Answer: 12. Then 5 more...", "12"),
    ("no digits here", None),
])
def test_number_formats(text, want):
    assert extract_number(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("B", 1), ("(C)", 2), ("The answer is D.", 3), ("answer: (A)", 0), ("A. safety goggles", 0),
    ("答案：B", 1), ("I would pick breathing mask", 1), ("None of these", None),
    ("The answer is a breathing mask.", 1),  # "a" the article, not option A
])
def test_choice_formats(text, want):
    assert extract_choice(text, ["safety goggles", "breathing mask", "rubber gloves",
                                 "lead apron"]) == want
