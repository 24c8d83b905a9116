"""Running the `lmstack` command as a user would, for the CLI tests: a real subprocess.

The console script `pip install -e .` put beside this Python, else `python -m lmstack`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def lmstack_command() -> list[str]:
    """The console script `pip install -e .` put beside this Python (`make test` does that)."""
    script = Path(sys.executable).parent / "lmstack"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "lmstack"]  # an uninstalled checkout: same entry point


def lmstack_env() -> dict[str, str]:
    # NO_COLOR and a fixed width: rich's output is then plain text the tests can match.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "120"}


def run_lmstack(*args: str, cwd: Path | None = None, timeout: float = 300,
                **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*lmstack_command(), *args], capture_output=True, text=True,
                          env=lmstack_env(), timeout=timeout, check=False, cwd=cwd, **kwargs)


def start_lmstack(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*lmstack_command(), *args], env=lmstack_env(), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)
