"""torchrun with 2 processes (gloo on CPU) trains exactly like 1 process with 2x accumulation,
with DDP and with FSDP (whose sharded checkpoint also resumes exactly)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from train_helpers import run_cli, run_env, tiny_config

from lmstack.train.metrics import read_metrics


def _torchrun() -> str | None:
    script = Path(sys.executable).parent / "torchrun"
    return str(script) if script.is_file() else shutil.which("torchrun")


@pytest.mark.skipif(_torchrun() is None, reason="torchrun is not installed")
def test_two_process_ddp_equals_one_process_with_accumulation(tokenizer_dir, shards_dir,
                                                              tmp_path):
    run = {"max_steps": 8, "eval_every": 8, "save_every": 8}
    single = tiny_config(tokenizer_dir, shards_dir, tmp_path / "single", grad_accum=2, **run)
    ddp = tiny_config(tokenizer_dir, shards_dir, tmp_path / "ddp", grad_accum=1, **run)
    (tmp_path / "single.yaml").write_text(yaml.safe_dump(single))
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(ddp))
    one = run_cli(["train", "--config", "single.yaml"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [_torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "lmstack", "train",
         "--config", "ddp.yaml"], cwd=tmp_path, env=run_env(), capture_output=True, text=True,
        timeout=240, check=False)
    assert two.returncode == 0, two.stderr[-3000:]
    a = read_metrics(tmp_path / "single" / "metrics.jsonl")
    b = read_metrics(tmp_path / "ddp" / "metrics.jsonl")
    loss_a = {r["step"]: r["loss"] for r in a if "loss" in r}
    loss_b = {r["step"]: r["loss"] for r in b if "loss" in r}
    assert sorted(loss_a) == sorted(loss_b) == list(range(1, 9))  # rank 0 alone logs
    for step, loss in loss_a.items():
        assert abs(loss - loss_b[step]) < 1e-5, (step, loss, loss_b[step])
    val_a = [r["val_loss"] for r in a if "val_loss" in r]
    val_b = [r["val_loss"] for r in b if "val_loss" in r]
    assert abs(val_a[-1] - val_b[-1]) < 1e-5
    assert (tmp_path / "ddp" / "checkpoints" / "step-0000008" / "model.safetensors").is_file()

    # FSDP: the same losses, and a resume from its step-4 checkpoint replays steps 5-8 exactly.
    fsdp = tiny_config(tokenizer_dir, shards_dir, tmp_path / "fsdp", grad_accum=1,
                       distributed="fsdp", keep_last=3, **{**run, "save_every": 4})
    (tmp_path / "fsdp.yaml").write_text(yaml.safe_dump(fsdp))
    cmd = [_torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "lmstack", "train",
           "--config", "fsdp.yaml"]
    first = subprocess.run(cmd, cwd=tmp_path, env=run_env(), capture_output=True, text=True,
                           timeout=240, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    full = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "fsdp" / "metrics.jsonl")
            if "loss" in r}
    for step, loss in loss_a.items():
        assert abs(loss - full[step]) < 1e-5, (step, loss, full[step])
    shutil.rmtree(tmp_path / "fsdp" / "checkpoints" / "step-0000008")
    again = subprocess.run([*cmd, "--resume"], cwd=tmp_path, env=run_env(), capture_output=True,
                           text=True, timeout=240, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "fsdp" / "metrics.jsonl")
               if "loss" in r}
    assert sorted(resumed) == list(range(1, 9))
    for step in range(5, 9):
        assert abs(resumed[step] - full[step]) <= 1e-6, (step, resumed[step], full[step])
