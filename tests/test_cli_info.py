"""The installed `lmstack` command, run as a user would: `lmstack info` on a good model folder,
and on every kind of broken folder one error line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_helpers import run_lmstack

# The broken-folder recipes and the message each must produce live with the hub tests.
_spec = importlib.util.spec_from_file_location(
    "hub_cases", Path(__file__).parent / "models" / "test_hub.py")
hub_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_cases)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Build every folder first, then run `lmstack info` on them a few at a time (each run
    pays for importing torch)."""
    root = tmp_path_factory.mktemp("cli")
    folders = {"good": hub_cases.saved(root / "good", tie_word_embeddings=True)}
    folders |= {kind: hub_cases.make_broken(kind, root) for kind in hub_cases.BROKEN}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(folders, pool.map(lambda f: run_lmstack("info", str(f)),
                                             folders.values())))
    return {kind: (folders[kind], results[kind]) for kind in folders}


def test_info_prints_architecture_and_parameters(outcomes):
    _, result = outcomes["good"]
    assert result.returncode == 0, result.stderr
    assert "LlamaForCausalLM" in result.stdout
    params = hub_cases.tiny_llama(tie_word_embeddings=True).num_parameters()
    assert f"{params:,}" in result.stdout  # tied embeddings counted once
    assert "float32" in result.stdout and result.stderr == ""
    assert "KiB" in result.stdout and " KB" not in result.stdout  # 1024-based units say so


@pytest.mark.parametrize("kind", sorted(hub_cases.BROKEN))
def test_broken_folder_gives_one_error_line(outcomes, kind):
    folder, result = outcomes[kind]
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(hub_cases.BROKEN[kind], lines[0]), lines[0]
    assert result.stdout == ""
    assert not (folder.parent / "pwned").exists()


def test_messages_with_brackets_are_printed_verbatim(tmp_path):
    """rich reads [tags] in strings; a folder named like one must neither vanish nor crash."""
    result = run_lmstack("info", str(tmp_path / "[/bold]model"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path}/[/bold]model is not a folder" in result.stderr
