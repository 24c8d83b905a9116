"""Demo stage `corpus`: writes the training text to OUT/corpus.txt.

The default is the standard library's docstrings (corpus.py), the same bytes on every run.
"""

from __future__ import annotations

from typing import Any

from lmstack.demo.corpus import load_corpus
from lmstack.demo.registry import Stage
from lmstack.fileio import atomic_write_text


def stage_corpus(run: Any) -> None:
    opts = run.settings("corpus", {"max_chars": 2_000_000})
    text = load_corpus(run.corpus_name, opts["max_chars"])
    if not text.strip():
        raise ValueError(f"corpus {run.corpus_name!r} is empty; choose another --corpus")
    path = run.out / "corpus.txt"
    atomic_write_text(path, text)
    run.artifacts["corpus"] = path
    run.section("Corpus", f"`{run.corpus_name}`: {len(text):,} characters, "
                f"{len(text.split()):,} words.")


STAGE = Stage("corpus", 10, stage_corpus, "the training text (default: stdlib docstrings)")
