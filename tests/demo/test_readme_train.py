"""The README's `lmstack train --config lmstack/configs/tiny-llama.yaml` works as written right
after `make demo`: the config reads the corpus and tokenizer the demo leaves in runs/demo."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_lmstack
from rich.console import Console

import lmstack
from lmstack.demo import run_demo

CONFIG = Path(lmstack.__file__).parent / "configs" / "tiny-llama.yaml"


def test_tiny_llama_config_trains_on_what_the_demo_left(tmp_path):
    # What `make demo` leaves under runs/demo, at a smaller scale (same stages, same paths).
    run_demo(tmp_path / "runs" / "demo", console=Console(quiet=True), stages="corpus,tokenizer",
             options={"corpus": {"max_chars": 100_000}, "tokenizer": {"vocab_size": 1024}})
    result = run_lmstack("train", "--config", str(CONFIG), "--set", "training.max_steps=3",
                         "--set", "training.eval_every=3", "--set", "training.eval_batches=1",
                         cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "runs" / "tiny" / "checkpoints" / "step-0000003" / "config.json").is_file()
