"""Command-line usage mistakes, run as a user types them: click's own usage message, exit 2,
no traceback, whichever copy of click typer raises from."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_helpers import run_lmstack

# argv -> words the message must hold (click names the missing or wrong piece).
MISTAKES = {
    "": "Usage:",
    "info": "Missing argument",
    "info --bogus x": "No such option: --bogus",
    "serve M --port abc": "Invalid value for '--port'",
    "nosuchcmd": "No such command 'nosuchcmd'",
    "tokenizer train -o X": "Missing argument",
    "train": "Missing option '--config'",
    "chat --max-tokens many": "Invalid value for '--max-tokens'",  # bare `chat` is SmolLM2
    "data prepare f.txt": "Missing option '--tokenizer'",
}


@pytest.fixture(scope="module")
def outcomes():
    # A few at a time: each run pays for starting Python and importing typer.
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(MISTAKES, pool.map(lambda argv: run_lmstack(*argv.split(), timeout=60),
                                           MISTAKES)))


@pytest.mark.parametrize("argv", list(MISTAKES))
def test_usage_mistake_is_a_usage_line_and_exit_2(outcomes, argv):
    result = outcomes[argv]
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert MISTAKES[argv] in output, output
    if argv:  # a mistake, not a bare `lmstack`: usage, a hint, one error line, nothing more
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and len(result.stderr.strip().splitlines()) <= 4, output


def test_help_shows_flags_as_flags():
    result = run_lmstack("train", "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "--resume" in line]
    assert "<bool>" not in line, line
