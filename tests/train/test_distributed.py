"""torchrun with 2 processes (gloo on CPU) trains exactly like 1 process with 2x accumulation,
with DDP and (separately) with FSDP, whose sharded checkpoint also resumes exactly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from train_helpers import run_cli, run_env, tiny_config

from lmstack.train.metrics import read_metrics

RUN = {"max_steps": 8, "eval_every": 8, "save_every": 8}


def _torchrun() -> str | None:
    script = Path(sys.executable).parent / "torchrun"
    return str(script) if script.is_file() else shutil.which("torchrun")


pytestmark = pytest.mark.skipif(_torchrun() is None, reason="torchrun is not installed")


def torchrun_train(config: dict, cwd: Path, *args: str, timeout: float = 240):
    """`torchrun --nproc_per_node 2 -m lmstack train`; on timeout the run is stopped, workers
    included (a hung collective must fail the test, not leave ranks behind)."""
    path = cwd / f"{Path(config['training']['out_dir']).name}.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [_torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "lmstack", "train",
         "--config", str(path), *args], cwd=cwd, env=run_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # torchrun starts each worker in its own session, out of reach of a group kill, and
        # hands SIGTERM on to them; SIGKILL only if that does not end it.
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"torchrun did not finish in {timeout} s (a rank waiting in a collective?)")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _losses(out_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out_dir / "metrics.jsonl") if "loss" in r}


@pytest.fixture(scope="module")
def single(tokenizer_dir, shards_dir, tmp_path_factory) -> Path:
    """The reference: one process with grad_accum 2 (what 2 ranks x accumulation 1 must equal)."""
    root = tmp_path_factory.mktemp("single")
    cfg = tiny_config(tokenizer_dir, shards_dir, root / "single", grad_accum=2, **RUN)
    (root / "single.yaml").write_text(yaml.safe_dump(cfg))
    one = run_cli(["train", "--config", "single.yaml"], root)
    assert one.returncode == 0, one.stderr
    return root / "single"


def test_two_process_ddp_equals_one_process_with_accumulation(tokenizer_dir, shards_dir,
                                                              single, tmp_path):
    ddp = tiny_config(tokenizer_dir, shards_dir, tmp_path / "ddp", grad_accum=1, **RUN)
    two = torchrun_train(ddp, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    loss_a, loss_b = _losses(single), _losses(tmp_path / "ddp")
    assert sorted(loss_a) == sorted(loss_b) == list(range(1, 9))  # rank 0 alone logs
    for step, loss in loss_a.items():
        assert abs(loss - loss_b[step]) < 1e-5, (step, loss, loss_b[step])
    val_a = [r["val_loss"] for r in read_metrics(single / "metrics.jsonl") if "val_loss" in r]
    val_b = [r["val_loss"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl")
             if "val_loss" in r]
    assert abs(val_a[-1] - val_b[-1]) < 1e-5
    assert (tmp_path / "ddp" / "checkpoints" / "step-0000008" / "model.safetensors").is_file()
    assert two.stdout.count("checkpoints:") == 1, two.stdout  # only rank 0 sums up


def test_fsdp_equals_one_process_and_resumes_exactly(tokenizer_dir, shards_dir, single,
                                                     tmp_path):
    fsdp = tiny_config(tokenizer_dir, shards_dir, tmp_path / "fsdp", grad_accum=1,
                       distributed="fsdp", keep_last=3, **{**RUN, "save_every": 4})
    first = torchrun_train(fsdp, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    full = _losses(tmp_path / "fsdp")
    for step, loss in _losses(single).items():
        assert abs(loss - full[step]) < 1e-5, (step, loss, full[step])
    # A resume from the step-4 checkpoint replays steps 5-8 exactly.
    shutil.rmtree(tmp_path / "fsdp" / "checkpoints" / "step-0000008")
    again = torchrun_train(fsdp, tmp_path, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = _losses(tmp_path / "fsdp")
    assert sorted(resumed) == list(range(1, 9))
    for step in range(5, 9):
        assert abs(resumed[step] - full[step]) <= 1e-6, (step, resumed[step], full[step])


def test_validation_with_fewer_batches_than_ranks_does_not_hang(tokenizer_dir, shards_dir,
                                                                 tmp_path):
    # One validation sequence for two ranks: rank 1 evaluates nothing, yet must join rank 0's
    # reduction (before the fix it skipped it and the two ranks waited on each other forever).
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "lopsided", max_steps=2,
                      eval_every=1, save_every=2, eval_batches=1, micro_batch_size=1)
    run = torchrun_train(cfg, tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    vals = [r for r in read_metrics(tmp_path / "lopsided" / "metrics.jsonl") if "val_loss" in r]
    assert [r["step"] for r in vals] == [1, 2] and all(r["val_loss"] > 0 for r in vals)
