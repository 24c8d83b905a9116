"""`lmstack tokenizer train` run as a user would: it writes a folder that loads and round-trips,
and a missing input file gives one error line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lmstack.tokenizer import Tokenizer


def run(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "lmstack"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "lmstack"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"}, check=False)


def test_tokenizer_train_writes_a_loadable_folder(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog.\n你好，世界！🙂\n" * 50,
                      encoding="utf-8")
    out = tmp_path / "tok"
    result = run("tokenizer", "train", str(corpus), "--out", str(out), "--vocab-size", "300")
    assert result.returncode == 0, result.stderr
    tok = Tokenizer.from_folder(out)
    text = "the lazy fox 你好 🙂"
    assert tok.decode(tok.encode(text)) == text
    assert len(tok) <= 300


def test_tokenizer_train_missing_file_is_one_line(tmp_path):
    result = run("tokenizer", "train", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "t"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no such file" in lines[0]
