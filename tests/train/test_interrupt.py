"""Ctrl-C during `lmstack train` stops cleanly: exit 130, one line saying where things stand
and how to continue, and the loss plot of what was trained."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
import yaml
from train_helpers import lmstack_cmd, run_env, tiny_config

from lmstack.train.checkpoint import list_checkpoints


def test_sigint_exits_130_naming_the_last_checkpoint(tokenizer_dir, shards_dir, tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "run", max_steps=1_000_000,
                      save_every=5, eval_every=1_000_000, log_every=5)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([*lmstack_cmd(), "train", "--config", "c.yaml"], cwd=tmp_path,
                            env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while (not list_checkpoints(tmp_path / "run" / "checkpoints") and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode == 0:
        pytest.fail(f"Ctrl-C must not look like success: exit 0, stderr {err[-500:]!r}")
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"interrupted at step \d+; last checkpoint step-\d{7}; "
                        r"continue with --resume", last), last
    step = int(last.split()[3].rstrip(";"))
    named = last.split("last checkpoint ")[1].split(";")[0]
    assert named == list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name
    assert int(named.removeprefix("step-")) <= step
    assert (tmp_path / "run" / "loss.png").is_file()
