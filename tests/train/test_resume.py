"""Checkpoints: exact resume after `kill -9` of a real training process, atomic folders, keep-N."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import torch
import yaml
from train_helpers import lmstack_cmd, run_cli, run_env, tiny_config

from lmstack.models.hub import load_model
from lmstack.train import build_trainer, parse_config
from lmstack.train.checkpoint import list_checkpoints, load_state
from lmstack.train.metrics import read_metrics


def _write(cfg: dict, path) -> str:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return str(path)


def _losses(out_dir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out_dir / "metrics.jsonl") if "loss" in r}


def test_resume_after_kill_matches_uninterrupted_run(tokenizer_dir, shards_dir, tmp_path):
    # Big enough that a step takes milliseconds, so the kill lands mid-run.
    run = {"max_steps": 40, "save_every": 10, "eval_every": 20, "micro_batch_size": 8,
           "keep_last": 2}
    ref_cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "ref", **run)
    ref_cfg["model"]["config"].update(hidden_size=64, intermediate_size=128)
    ref_cfg["data"]["seq_len"] = 64
    ref = run_cli(["train", "--config", _write(ref_cfg, tmp_path / "ref.yaml")], tmp_path)
    assert ref.returncode == 0, ref.stderr

    cfg = {**ref_cfg, "training": {**ref_cfg["training"], "out_dir": str(tmp_path / "killed")}}
    path = _write(cfg, tmp_path / "killed.yaml")
    proc = subprocess.Popen([*lmstack_cmd(), "train", "--config", path], cwd=tmp_path,
                            env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 120
    while not list_checkpoints(ckpts) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"the run ended before it could be killed (rc {proc.returncode}); "
                    f"{proc.stderr.read().decode()[-500:]}")
    resumed_from = load_state(list_checkpoints(ckpts)[-1])["step"]
    assert resumed_from < 40

    res = run_cli(["train", "--config", path, "--resume"], tmp_path)
    assert res.returncode == 0, res.stderr
    want, got = _losses(tmp_path / "ref"), _losses(tmp_path / "killed")
    assert sorted(got) == list(range(1, 41))  # no duplicated or missing steps in the log
    for step in range(resumed_from + 1, 41):
        assert abs(got[step] - want[step]) <= 1e-6, (step, got[step], want[step])
    final_ref = load_model(tmp_path / "ref" / "checkpoints" / "step-0000040")
    final = load_model(tmp_path / "killed" / "checkpoints" / "step-0000040")
    for (name, a), (_, b) in zip(final_ref.state_dict().items(), final.state_dict().items(),
                                 strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_checkpoint_folder_is_an_hf_model_and_old_ones_are_pruned(
        tokenizer_dir, shards_dir, tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path, max_steps=30, save_every=10,
                      keep_last=2)
    trainer = build_trainer(parse_config(cfg))
    trainer.fit()
    ckpts = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in ckpts] == ["step-0000020", "step-0000030"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    folder = ckpts[-1]
    assert (folder / "tokenizer.json").is_file() and (folder / "model.safetensors").is_file()
    state = load_state(folder)  # weights_only: no pickled code needed to resume
    assert {"optimizer", "scheduler", "sampler", "rng", "step"} <= set(state)
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    ours = load_model(folder)
    ids = torch.randint(0, 384, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, ours(ids), atol=1e-5, rtol=1e-4)
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_resume_without_checkpoint_starts_fresh(tokenizer_dir, shards_dir, tmp_path):
    trainer = build_trainer(parse_config(tiny_config(tokenizer_dir, shards_dir, tmp_path)))
    assert trainer.resume() is False and trainer.step == 0
