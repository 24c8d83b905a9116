"""Input files a user can get wrong, through the real `lmstack` command: a non-UTF-8 or empty
file for `tokenizer train` or `data prepare` is one line naming the file, exit 2."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_helpers import run_lmstack

from lmstack.tokenizer import train_bpe_from_iterator


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    (root / "latin1.txt").write_bytes("café crème brûlée\n".encode("latin-1") * 20)
    (root / "empty.txt").write_bytes(b"")
    train_bpe_from_iterator(["some text to learn from"] * 10, vocab_size=300,
                            show_progress=False).save(root / "tok")
    runs = {
        "tokenizer latin1": (["tokenizer", "train", str(root / "latin1.txt"), "-o",
                              str(root / "t1")], "latin1.txt is not UTF-8 text"),
        "tokenizer empty": (["tokenizer", "train", str(root / "empty.txt"), "-o",
                             str(root / "t2")], "empty.txt is empty"),
        "prepare latin1": (["data", "prepare", str(root / "latin1.txt"), "-t", str(root / "tok"),
                            "-o", str(root / "d1")], "latin1.txt is not UTF-8 text"),
        "prepare empty": (["data", "prepare", str(root / "empty.txt"), "-t", str(root / "tok"),
                           "-o", str(root / "d2")], "empty.txt is empty"),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda argv: run_lmstack(*argv, timeout=120),
                           [argv for argv, _ in runs.values()])
    return {name: (result, runs[name][1]) for name, result in zip(runs, results)}


@pytest.mark.parametrize("name", ["tokenizer latin1", "tokenizer empty", "prepare latin1",
                                  "prepare empty"])
def test_bad_file_is_one_line_naming_it(cases, name):
    result, words = cases[name]
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_tokenizer_help_says_what_it_does():
    result = run_lmstack("tokenizer", "--help", timeout=60)
    assert result.returncode == 0 and "Train byte-level BPE" in result.stdout
    assert "inspect" not in result.stdout
