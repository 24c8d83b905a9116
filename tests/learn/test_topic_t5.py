"""`lmstack learn t5` at tiny scale: it trains, the loss falls, and the report holds a score
per task; the task generators themselves are checked on known answers."""

from __future__ import annotations

from lmstack.learn.registry import find_topic
from lmstack.learn.topic_t5 import TASKS, chinese, english, make_examples


def test_number_words():
    assert english(1234) == "one thousand two hundred thirty-four"
    assert english(0) == "zero" and english(1010) == "one thousand ten"
    assert chinese(1234) == "一千二百三十四"
    assert chinese(1005) == "一千零五" and chinese(1050) == "一千零五十"
    assert chinese(12) == "十二" and chinese(110) == "一百一十" and chinese(0) == "零"


def test_held_out_inputs_are_never_trained_on():
    train, test = make_examples(2000, 20)
    assert not {x for _, x, _ in train} & {x for _, x, _ in test}
    assert {t for t, _, _ in test} == set(TASKS)


def test_tiny_run_writes_a_report(tmp_path):
    results = find_topic("t5").run(tmp_path, True)
    assert results["final_loss"] < results["first_loss"]
    assert set(results["exact_match"]) == set(TASKS)
    assert all(0.0 <= v <= 1.0 for v in results["exact_match"].values())
    assert results["transformers_agrees"] == "16/16"  # transformers decodes our save the same
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "数字转中文" in report and "| sort |" in report
    assert (tmp_path / "train" / "loss.png").is_file()
    assert (tmp_path / "cross_attention.png").is_file()
