"""`lmstack finetune` as a user runs it: one-line errors for bad keys and combinations; LoRA
SFT end to end on a tiny model (only the adapter trains, the base stays bit-identical); full
fine-tuning, DPO, ORPO and distillation wired through the same command for a few steps."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from train_helpers import SFT, run_cli, write_config

from lmstack.adapt import lora_layers
from lmstack.adapt.methods import METHODS, prepare
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.train import ConfigError
from lmstack.train.finetune import build_finetune_trainer, finetune_from_config
from lmstack.train.finetune_config import load_finetune_config

PAIRS = [{"conversations": [{"from": "human", "value": f"Say yes ({i})"}],
          "chosen": {"from": "gpt", "value": "Yes."},
          "rejected": {"from": "gpt", "value": "No, never."}} for i in range(8)]


def test_bad_finetune_config_is_one_line_naming_the_key(tmp_path, model_dir):
    path = write_config(tmp_path, model_dir, SFT)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["max_lenn"] = 10
    path.write_text(yaml.safe_dump(raw))
    result = run_cli(["finetune", "--config", str(path)], tmp_path)
    err = result.stderr.strip()
    assert result.returncode == 2 and "data.max_lenn" in err and "unknown key" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("override", "named"), [
    ({"objective": "classify"}, "objective"),
    ({"objective": "distill"}, "distill.teacher"),
    ({"method_options": {"rank": 4}}, "method_options.rank"),
    ({"method": "lora", "dpo": {"beta": -1}}, "dpo.beta"),
])
def test_bad_combinations_name_their_keys(tmp_path, model_dir, override, named):
    with pytest.raises(ConfigError) as err:
        load_finetune_config(write_config(tmp_path, model_dir, SFT, **override))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_lora_sft_trains_only_the_adapter(tmp_path, model_dir):
    cfg = load_finetune_config(write_config(tmp_path, model_dir, SFT, method="lora",
                                            method_options={"r": 4, "alpha": 8}))
    trainer = build_finetune_trainer(cfg)
    model = trainer.raw_model
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    trainer.forward_backward(trainer.draw_micro_batches())
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert len(with_grad) == 2 * len(lora_layers(model))  # A and B of every layer
    trainer.optimizer.zero_grad(set_to_none=True)
    summary = trainer.fit()
    for name, p in model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, base[name]), f"{name} changed"
    assert any(layer.lora_B.weight.abs().sum() > 0 for layer in lora_layers(model).values())
    assert summary["step"] == 3 and "val_loss" in summary
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(("objective", "records", "extra"), [
    ("sft", SFT, {"method": "full"}),
    ("dpo", PAIRS, {}),
    ("dpo", PAIRS, {"dpo": {"reference": "model"}}),
    ("orpo", PAIRS, {}),
    ("distill", SFT, {"distill": {"student_layers": 1}, "method": "full"}),
])
def test_objectives_run_through_finetune(tmp_path, model_dir, objective, records, extra):
    cfg = load_finetune_config(write_config(tmp_path, model_dir, records,
                                            objective=objective, **extra))
    summary = finetune_from_config(cfg)
    assert summary["step"] == 3 and torch.isfinite(torch.tensor(summary["val_loss"]))
    log = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").open()]
    if objective == "dpo":
        assert "metric_reward_accuracy" in log[0] and "val_metric_reward_margin" in log[-1]
    saved = tmp_path / "out" / ("model" if extra.get("method") == "full" else "adapter")
    assert saved.is_dir()


def test_methods_registry_dispatches_and_refuses_clearly():
    def fresh():
        return LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16,
                                            num_hidden_layers=1, num_attention_heads=2,
                                            num_key_value_heads=1))

    model = fresh()
    total = sum(p.numel() for p in model.parameters())
    same, params = prepare("full", model)
    assert same is model and sum(p.numel() for p in params) == total
    same, params = prepare("lora", model, {"r": 2})
    assert same is model and 0 < sum(p.numel() for p in params) < total
    options = {"dora": {"r": 2}, "ia3": {}, "adapter": {"bottleneck_size": 4},
               "prompt": {"num_virtual_tokens": 2}, "prefix": {"num_virtual_tokens": 2}}
    assert set(options) | {"full", "lora"} == set(METHODS)
    for name, opts in options.items():
        base = fresh()
        adapted, params = prepare(name, base, opts)
        trainable = {id(p) for p in adapted.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in params} and params, name  # exactly these train
        n = sum(p.numel() for p in params)
        assert 0 < n < sum(p.numel() for p in adapted.parameters()), name
        assert (adapted is base) == (name not in ("prompt", "prefix")), name  # those wrap it
    with pytest.raises(ValueError, match="unknown method"):
        prepare("magic", model)
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        prepare("prompt", fresh(), {"prompt_tuning_init_text": "hi"})


def test_the_shipped_config_parses():
    from pathlib import Path

    import lmstack

    cfg = load_finetune_config(Path(lmstack.__file__).parent / "configs" /
                               "smollm2-lora-sft.yaml", {"objective": "dpo"})
    assert cfg.method == "lora" and cfg.objective == "dpo" and cfg.method_options["r"] == 16
