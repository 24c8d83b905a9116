"""`make demo TORCH_INDEX=...` installs torch from that index; without it, from plain PyPI
(what machines that reach only PyPI need). Checked with `make -n`, which runs nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def torch_install_line(*make_args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    out = subprocess.run(["make", "-n", "-B", "-C", str(REPO), ".venv/.installed-stamp",
                          *make_args], capture_output=True, text=True, check=True, timeout=60)
    (line,) = [x for x in out.stdout.splitlines() if "pip install" in x and "torch==" in x]
    return line


def test_torch_comes_from_the_given_index():
    assert f"--index-url {CPU_INDEX} torch==2.13.0" in torch_install_line(f"TORCH_INDEX={CPU_INDEX}")


def test_default_install_uses_pypi():
    assert "--index-url" not in torch_install_line()
