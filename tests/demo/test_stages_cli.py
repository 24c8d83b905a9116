"""Choosing demo stages: `--stages` runs only those named, and a wrong name or a missing
earlier artifact is one line, exit 2, from the real `lmstack demo` command."""

from __future__ import annotations

import pytest
from cli_helpers import run_lmstack  # tests/cli_helpers.py (tests/ is on the path via conftest)

from lmstack.demo import all_stages, select_stages


def test_stages_are_found_by_file_and_run_in_order():
    names = [s.name for s in all_stages()]
    assert names[:4] == ["corpus", "tokenizer", "pretrain", "serve"]
    assert [s.name for s in select_stages("serve,corpus")] == ["corpus", "serve"]
    with pytest.raises(ValueError, match="unknown demo stage bogus"):
        select_stages("corpus,bogus")


@pytest.mark.parametrize(("stages", "words"), [
    ("bogus", "unknown demo stage bogus; --stages takes"),
    ("pretrain", "needs the corpus"),
])
def test_bad_stage_choice_is_one_line(tmp_path, stages, words):
    result = run_lmstack("demo", "--out", str(tmp_path / "d"), "--stages", stages, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_corpus_stage_alone_from_the_command_line(tmp_path):
    result = run_lmstack("demo", "--out", str(tmp_path), "--stages", "corpus", timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "corpus.txt").stat().st_size > 100_000
    assert "## Corpus" in (tmp_path / "report.md").read_text()
