"""Adapters as Hugging Face PEFT folders: `adapter_config.json` + `adapter_model.safetensors`.

PEFT wraps the model twice (PeftModel.base_model = LoraModel, whose .model is the original), so
its saved keys are our module names behind "base_model.model.", without the adapter's name:
`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (DoRA adds
`...q_proj.lora_magnitude_vector`, (IA)3 saves `...k_proj.ia3_l`); prompt and prefix tuning
save one `prompt_embeddings` table. A folder we write loads with `peft.PeftModel.from_pretrained`,
and one PEFT wrote loads here (tests/adapt/test_lora.py, test_peft_methods.py).

GPT-2 keeps its projections as Conv1D ([in, out]); PEFT marks adapters on those layers
`fan_in_fan_out`, which changes only how it merges: A and B have the usual nn.Linear shapes, so
the same factors fit our nn.Linear layers as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from lmstack.adapt.dora import DoRALinear, apply_dora
from lmstack.adapt.ia3 import apply_ia3, ia3_layers
from lmstack.adapt.lora import apply_lora, lora_layers, matches
from lmstack.adapt.peft_folder import read_adapter, write_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned
from lmstack.adapt.wrapped import WrappedModel
from lmstack.models.registry import family_of

PREFIX = "base_model.model."


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


def target_names(model: nn.Module, adapted: Iterable[str]) -> list[str]:
    """PEFT's target_modules for these adapted layers: each layer's shortest dotted suffix
    that matches no other Linear (GPT-2's `mlp.c_proj`, not `c_proj`, which attn has too)."""
    adapted = set(adapted)
    others = [n for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n not in adapted and not n.endswith(".base_layer")]
    names = set()
    for name in adapted:
        parts = name.split(".")
        names.add(next(".".join(parts[-k:]) for k in range(1, len(parts) + 1)
                       if not any(matches(o, [".".join(parts[-k:])]) for o in others)))
    return sorted(names)


def lora_config(model: nn.Module) -> dict:
    """The adapter_config.json fields PEFT writes for a LoRA (or DoRA) adapter."""
    layers = lora_layers(model)
    first = next(iter(layers.values()))
    if any((type(m), m.r, m.alpha, m.use_rslora) !=
           (type(first), first.r, first.alpha, first.use_rslora) for m in layers.values()):
        raise ValueError("save_adapter writes one r/alpha/kind for all layers; these differ")
    return {
        "peft_type": "LORA", "r": first.r, "lora_alpha": first.alpha,
        "lora_dropout": getattr(first.lora_dropout, "p", 0.0), "use_rslora": first.use_rslora,
        "use_dora": isinstance(first, DoRALinear),
        "fan_in_fan_out": fan_in_fan_out(model, layers), "bias": "none",
        "target_modules": target_names(model, layers),
        "init_lora_weights": True,
    }


def lora_tensors(model: nn.Module) -> dict[str, Tensor]:
    tensors = {}
    for name, layer in lora_layers(model).items():
        for part in ("lora_A", "lora_B"):
            tensors[f"{PREFIX}{name}.{part}.weight"] = getattr(layer, part).weight
        if isinstance(layer, DoRALinear):
            tensors[f"{PREFIX}{name}.lora_magnitude_vector"] = layer.lora_magnitude_vector
    return tensors


def ia3_config(model: nn.Module) -> dict:
    layers = ia3_layers(model)
    feedforward = [n for n, m in layers.items() if m.is_feedforward]
    return {"peft_type": "IA3", "target_modules": target_names(model, layers),
            "feedforward_modules": target_names(model, feedforward),
            "fan_in_fan_out": False, "init_ia3_weights": True}


def adapter_config(model: nn.Module, base_model: str | None = None) -> dict:
    """The adapter_config.json fields PEFT writes for the adapter `model` carries."""
    if isinstance(model, WrappedModel):  # prompt and prefix tuning describe themselves
        config = model.peft_config()
    elif lora_layers(model):
        config = lora_config(model)
    elif ia3_layers(model):
        config = ia3_config(model)
    else:
        raise ValueError("the model carries no adapter; attach one first (apply_lora, "
                         "apply_dora, apply_ia3, PromptTuned, PrefixTuned)")
    return {**config, "base_model_name_or_path": base_model}


def adapter_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The adapter's weights under PEFT's saved names (no adapter name in them)."""
    if isinstance(model, WrappedModel):
        return model.peft_tensors()
    if lora_layers(model):
        return lora_tensors(model)
    return {f"{PREFIX}{n}.ia3_l": m.ia3_l for n, m in ia3_layers(model).items()}


def save_adapter(model: nn.Module, folder: str | Path, base_model: str | None = None) -> Path:
    """Write the model's adapter (its weights only) as a PEFT folder, each file atomically."""
    return write_adapter(folder, adapter_config(model, base_model), adapter_tensors(model))


def load_adapter(model: nn.Module, folder: str | Path) -> nn.Module:
    """Attach the adapter a PEFT folder describes to `model` and load its weights. Returns
    the adapted model: `model` itself for LoRA, DoRA and (IA)3 (wrapped in place), a
    PromptTuned / PrefixTuned around it for prompt and prefix tuning."""
    config, tensors = read_adapter(folder)
    kind = config.get("peft_type")
    unsupported = {k: config[k] for k in ("modules_to_save", "rank_pattern", "alpha_pattern")
                   if config.get(k)}
    if config.get("bias", "none") != "none":
        unsupported["bias"] = config["bias"]
    if unsupported:
        raise ValueError(f"{folder}: these adapter settings are not supported yet: {unsupported}")
    if kind == "LORA":
        targets = config["target_modules"]
        targets = [targets] if isinstance(targets, str) else targets  # PEFT allows one string
        attach = apply_dora if config.get("use_dora") else apply_lora
        attach(model, targets, r=config["r"], alpha=config["lora_alpha"],
               dropout=config.get("lora_dropout", 0.0), use_rslora=config.get("use_rslora", False))
        if bool(config.get("fan_in_fan_out")) != fan_in_fan_out(model, lora_layers(model)):
            raise ValueError(f"{folder}: fan_in_fan_out={config.get('fan_in_fan_out')} does not "
                             "match how this model's checkpoint stores the target layers")
        adapted = model
    elif kind == "IA3":
        adapted = apply_ia3(model, config["target_modules"], config.get("feedforward_modules"))
    elif kind == "PROMPT_TUNING":
        adapted = PromptTuned(model, config["num_virtual_tokens"])
    elif kind == "PREFIX_TUNING":
        adapted = PrefixTuned(model, config["num_virtual_tokens"])
    else:
        raise ValueError(f"{folder} holds a {kind} adapter; lmstack loads LORA (and DoRA), "
                         "IA3, PROMPT_TUNING and PREFIX_TUNING")
    wanted = adapter_tensors(adapted)
    if set(tensors) != set(wanted) or any(tensors[k].shape != v.shape for k, v in wanted.items()):
        missing, extra = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
        raise ValueError(f"{folder}: adapter weights do not fit this model; missing "
                         f"{missing[:3]}, unexpected {extra[:3]} (or shapes differ: was it "
                         "trained on another base model?)")
    with torch.no_grad():
        for key, param in wanted.items():
            param.copy_(tensors[key].to(param.dtype))
    return adapted
