"""LoRA adapters as Hugging Face PEFT folders: `adapter_config.json` + `adapter_model.safetensors`.

PEFT wraps the model twice (PeftModel.base_model = LoraModel, whose .model is the original), so
its saved keys are our module names behind "base_model.model.", without the adapter's name:
`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`. A folder we write loads with
`peft.PeftModel.from_pretrained`, and one PEFT wrote loads here (tests/adapt/test_lora.py).

GPT-2 keeps its projections as Conv1D ([in, out]); PEFT marks adapters on those layers
`fan_in_fan_out`, which changes only how it merges: A and B have the usual nn.Linear shapes, so
the same factors fit our nn.Linear layers as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from lmstack.adapt.lora import apply_lora, lora_layers
from lmstack.fileio import atomic_write, atomic_write_text
from lmstack.models.registry import family_of

PREFIX = "base_model.model."
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


def fan_in_fan_out(model: nn.Module, names) -> bool:
    """Whether the checkpoint stores these layers transposed (Conv1D), as one flag for all."""
    config = getattr(model, "config", None)
    if config is None:
        return False
    stored = {family_of(model).transposes(f"{name}.weight") for name in names}
    if len(stored) > 1:
        raise ValueError("the LoRA targets mix Conv1D and Linear layers; PEFT has one "
                         "fan_in_fan_out flag per adapter")
    return stored.pop()


def adapter_config(model: nn.Module, base_model: str | None = None) -> dict:
    """The adapter_config.json PEFT writes for a LoRA adapter on a causal LM."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers; call apply_lora first")
    first = next(iter(layers.values()))
    if any((m.r, m.alpha, m.use_rslora) != (first.r, first.alpha, first.use_rslora)
           for m in layers.values()):
        raise ValueError("save_adapter writes one r/alpha for all layers; these differ")
    dropout = getattr(first.lora_dropout, "p", 0.0)
    return {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model,
        "r": first.r, "lora_alpha": first.alpha, "lora_dropout": dropout,
        "use_rslora": first.use_rslora, "fan_in_fan_out": fan_in_fan_out(model, layers),
        "bias": "none",
        "target_modules": sorted({name.rpartition(".")[2] for name in layers}),
        "modules_to_save": None, "inference_mode": True, "init_lora_weights": True,
    }


def save_adapter(model: nn.Module, folder: str | Path, base_model: str | None = None) -> Path:
    """Write the model's LoRA factors (only those) as a PEFT adapter folder, each file atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = adapter_config(model, base_model)
    tensors = {}
    for name, layer in lora_layers(model).items():
        for part in ("lora_A", "lora_B"):
            tensors[f"{PREFIX}{name}.{part}.weight"] = (
                getattr(layer, part).weight.detach().cpu().contiguous())
    atomic_write(folder / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")
    return folder


def load_adapter(model: nn.Module, folder: str | Path) -> nn.Module:
    """Wrap `model` with the LoRA layers a PEFT folder describes and load their weights."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{folder} holds a {config.get('peft_type')} adapter; only LORA loads")
    unsupported = {k: config[k] for k in ("modules_to_save", "rank_pattern",
                                          "alpha_pattern", "use_dora") if config.get(k)}
    if config.get("bias", "none") != "none":
        unsupported["bias"] = config["bias"]
    if unsupported:
        raise ValueError(f"{folder}: these adapter settings are not supported yet: {unsupported}")
    targets = config["target_modules"]
    targets = [targets] if isinstance(targets, str) else targets  # PEFT allows one string
    apply_lora(model, targets, r=config["r"], alpha=config["lora_alpha"],
               dropout=config.get("lora_dropout", 0.0), use_rslora=config.get("use_rslora", False))
    layers = lora_layers(model)
    if bool(config.get("fan_in_fan_out")) != fan_in_fan_out(model, layers):
        raise ValueError(f"{folder}: fan_in_fan_out={config.get('fan_in_fan_out')} does not "
                         "match how this model's checkpoint stores the target layers")
    wanted = {f"{PREFIX}{n}.{p}.weight" for n in layers for p in ("lora_A", "lora_B")}
    tensors = load_file(folder / WEIGHTS)
    if set(tensors) != wanted:
        missing, extra = sorted(wanted - set(tensors)), sorted(set(tensors) - wanted)
        raise ValueError(f"{folder}: adapter keys do not fit this model; missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    for name, layer in layers.items():
        for part in ("lora_A", "lora_B"):
            weight = getattr(layer, part).weight
            weight.data.copy_(tensors[f"{PREFIX}{name}.{part}.weight"].to(weight.dtype))
    return model
