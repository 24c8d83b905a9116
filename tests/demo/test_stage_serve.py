"""The demo's serving stage apart from the end-to-end run: it skips without a model, and its
prose follows what the replies hold."""

from __future__ import annotations

from rich.console import Console

from lmstack.demo import DemoRun
from lmstack.demo.stage_serve import describe_replies, stage_serve


def test_stage_serve_skips_without_a_model(tmp_path):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True))
    stage_serve(run)
    assert "Skipped" in run.sections[0]


def test_prose_names_empty_replies_and_only_those():
    both = describe_replies("  \n ", "")
    assert "chat answer and the plain completion are empty" in both
    one = describe_replies("The function returns the number of items.", " ")
    assert "plain completion is empty" in one and "chat answer" not in one
    assert "empty" not in describe_replies("It returns a count of items.", " of items in x")
