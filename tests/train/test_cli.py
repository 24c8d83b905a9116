"""The training CLI as a user runs it: bad configs, data prepare, train, eval ppl."""

from __future__ import annotations

import pytest
import yaml
from train_helpers import run_cli, tiny_config

from lmstack.train import ConfigError, load_config


def test_bad_config_key_gives_one_line_error(tokenizer_dir, shards_dir, tmp_path):
    cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "out")
    cfg["training"]["lrr"] = 3e-4
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    result = run_cli(["train", "--config", "bad.yaml"], tmp_path)
    assert result.returncode != 0
    err = result.stderr.strip()
    assert "training.lrr" in err and "unknown key" in err
    assert "Traceback" not in result.stderr + result.stdout
    assert len(err.splitlines()) == 1, err


def test_bad_values_and_model_keys_are_named(tokenizer_dir, shards_dir, tmp_path):
    """The same one-line errors, checked in-process (the CLI prints exactly this message)."""
    cases = [
        (("training", "precision"), "fp8", "training.precision"),
        (("optimizer", "lr"), -1, "optimizer.lr"),
        (("model", "config"), {"hiden_size": 8}, "model.config.hiden_size"),
        (("model", "architecture"), "MambaForCausalLM", "model.architecture"),
    ]
    for (section, key), value, expected in cases:
        cfg = tiny_config(tokenizer_dir, shards_dir, tmp_path / "out")
        cfg[section][key] = value
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
        with pytest.raises(ConfigError) as err:
            load_config(tmp_path / "bad.yaml")
        assert expected in str(err.value) and "\n" not in str(err.value)


def test_prepare_train_and_eval_ppl_end_to_end(tokenizer_dir, corpus_file, tmp_path):
    prep = run_cli(["data", "prepare", str(corpus_file), "--tokenizer", str(tokenizer_dir),
                    "--out", "shards", "--val-fraction", "0.1"], tmp_path)
    assert prep.returncode == 0, prep.stderr
    cfg = tiny_config(tokenizer_dir, tmp_path / "shards", tmp_path / "run", max_steps=20)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    train = run_cli(["train", "--config", "c.yaml", "--set", "training.max_steps=10"], tmp_path)
    assert train.returncode == 0, train.stderr
    model = tmp_path / "run" / "checkpoints" / "step-0000010"
    assert model.is_dir()
    held_out = tmp_path / "held_out.txt"
    held_out.write_text(corpus_file.read_text()[-5000:])
    ppl = run_cli(["eval", "ppl", str(model), str(held_out), "--seq-len", "32"], tmp_path)
    assert ppl.returncode == 0, ppl.stderr
    assert "perplexity" in ppl.stdout and "bits / character" in ppl.stdout
