"""Resume when things are wrong: a damaged newest checkpoint, a hostile trainer_state.pt, a
changed model config; each is one line (or a warning), never a traceback."""

from __future__ import annotations

import re

import pytest
import torch
import yaml
from train_helpers import run_cli, tiny_config

from lmstack.train import build_trainer, parse_config
from lmstack.train.checkpoint import STATE_FILE, list_checkpoints


class Payload:
    """A pickle that, when unpickled, creates a marker file (proof that code ran)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (self.marker,))


def _trained(tokenizer_dir, shards_dir, out_dir, **run) -> dict:
    cfg = tiny_config(tokenizer_dir, shards_dir, out_dir, **{"max_steps": 20, "save_every": 10,
                                                              "eval_every": 100, **run})
    build_trainer(parse_config(cfg)).fit()
    return cfg


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tokenizer_dir, shards_dir,
                                                                     tmp_path):
    cfg = _trained(tokenizer_dir, shards_dir, tmp_path)
    newest = list_checkpoints(tmp_path / "checkpoints")[-1]
    state = newest / STATE_FILE
    state.write_bytes(state.read_bytes()[:200])  # a save cut short by a full disk
    trainer = build_trainer(parse_config(cfg))
    with pytest.warns(UserWarning, match=r"damaged .*resumed from the previous complete one, "
                                         r"step-0000010"):
        assert trainer.resume()
    assert trainer.step == 10 and trainer.resumed_from.name == "step-0000010"


def test_a_hostile_trainer_state_is_one_line_without_torch_advice(tokenizer_dir, shards_dir,
                                                                  tmp_path):
    cfg = _trained(tokenizer_dir, shards_dir, tmp_path / "run", max_steps=10, keep_last=1)
    marker = tmp_path / "pwned"
    torch.save({"step": Payload(marker)}, tmp_path / "run" / "checkpoints" / "step-0000010" /
               STATE_FILE)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    result = run_cli(["train", "--config", "c.yaml", "--resume"], tmp_path)
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.stderr, err
    assert "trainer_state.pt is damaged or not a trainer state" in err
    assert "weights_only" not in err  # torch's advice to turn the safety off is not ours to give
    assert not marker.exists()


def test_resume_names_its_checkpoint_and_refuses_a_changed_model(tokenizer_dir, shards_dir,
                                                                 tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "run", max_steps=10, eval_every=100)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert run_cli(["train", "--config", "c.yaml"], tmp_path).returncode == 0
    more = run_cli(["train", "--config", "c.yaml", "--resume", "--set",
                    "training.max_steps=12"], tmp_path)
    assert more.returncode == 0, more.stderr
    assert re.search(r"resumed from \S*step-0000010 \(step 10\)", more.stdout), more.stdout

    wider = run_cli(["train", "--config", "c.yaml", "--resume", "--set",
                     "model.config.hidden_size=64", "--set", "training.max_steps=20"], tmp_path)
    assert wider.returncode == 2
    err = wider.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in wider.stderr, err
    assert ("checkpoint step-0000012 was written for a different model config "
            "(model.config.hidden_size 32 -> 64)") in err
