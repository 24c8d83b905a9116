"""Fine-tuning methods by name: how `lmstack finetune --method NAME` readies a model to train
and what it saves afterwards.

A method is `prepare(model, **options) -> the trainable parameters` (it freezes the rest) and
`save(model, folder, base_model)`; adding one is one line in METHODS (the pattern of PEFT's
PEFT_TYPE_TO_MODEL_MAPPING). Names listed in PLANNED but not yet registered get a one-line
"not available" error rather than an unknown-name one: prompt and prefix tuning wrap the
model (lmstack.adapt.prompt / prefix, usable from Python) instead of changing it in place,
which this command's in-place `prepare` does not handle yet.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from lmstack.adapt.bottleneck import adapter_state_dict, apply_bottleneck
from lmstack.adapt.dora import apply_dora
from lmstack.adapt.ia3 import apply_ia3
from lmstack.adapt.lora import apply_lora
from lmstack.adapt.peft_files import save_adapter

PLANNED = ("full", "lora", "dora", "prefix", "prompt", "ia3", "adapter")


@dataclass(frozen=True)
class Method:
    prepare: Callable[..., list[nn.Parameter]]   # (model, **options) -> trainable parameters
    save: Callable[[nn.Module, Path, str | None], Any]  # (model, folder, base model name)
    saves: str  # what save writes: "adapter" (PEFT folder) or "model" (whole HF folder)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def prepare_full(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter trains."""
    model.requires_grad_(True)
    return trainable(model)


def save_full(model: nn.Module, folder: Path, base_model: str | None = None) -> None:
    model.save_pretrained(folder)


def prepare_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: tuple[str, ...] | list[str] = ("q_proj", "v_proj"),
                 use_rslora: bool = False) -> list[nn.Parameter]:
    """Low-rank factors beside the frozen target Linears (lora.py)."""
    apply_lora(model, target_modules, r, alpha, dropout, use_rslora)
    return trainable(model)


def prepare_dora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: tuple[str, ...] | list[str] = ("q_proj", "v_proj"),
                 use_rslora: bool = False) -> list[nn.Parameter]:
    """LoRA's factors plus a learned magnitude per output row (dora.py)."""
    apply_dora(model, target_modules, r, alpha, dropout, use_rslora)
    return trainable(model)


def prepare_ia3(model: nn.Module, target_modules: list[str] | None = None,
                feedforward_modules: list[str] | None = None) -> list[nn.Parameter]:
    """Learned scaling vectors on keys, values and the MLP's input (ia3.py)."""
    apply_ia3(model, target_modules, feedforward_modules)
    return trainable(model)


def prepare_bottleneck(model: nn.Module, target_modules: tuple[str, ...] | list[str] = (
        "self_attn", "mlp"), bottleneck_size: int = 16, activation: str = "gelu"
        ) -> list[nn.Parameter]:
    """Houlsby bottleneck adapters after attention and MLP (bottleneck.py)."""
    apply_bottleneck(model, target_modules, bottleneck_size, activation)
    return trainable(model)


def save_bottleneck(model: nn.Module, folder: Path, base_model: str | None = None) -> None:
    """PEFT has no bottleneck format: the adapter weights alone, as safetensors."""
    from safetensors.torch import save_file

    from lmstack.fileio import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in adapter_state_dict(model).items()}
    atomic_write(folder / "bottleneck_adapters.safetensors",
                 lambda tmp: save_file(tensors, tmp, metadata={"base_model": base_model or ""}))


METHODS: dict[str, Method] = {
    "full": Method(prepare_full, save_full, "model"),
    "lora": Method(prepare_lora, save_adapter, "adapter"),
    "dora": Method(prepare_dora, save_adapter, "adapter"),
    "ia3": Method(prepare_ia3, save_adapter, "adapter"),
    "adapter": Method(prepare_bottleneck, save_bottleneck, "adapter"),
}


def method(name: str) -> Method:
    if name not in METHODS:
        available = ", ".join(sorted(METHODS))
        if name in PLANNED:
            raise ValueError(f"method {name!r} is not available in this lmstack yet; "
                             f"use one of {available}")
        raise ValueError(f"unknown method {name!r}; use one of {available}")
    return METHODS[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Options must be keyword parameters of the method's prepare function."""
    params = inspect.signature(method(name).prepare).parameters
    known = list(params)[1:]  # the first is the model
    for key in options:
        if key not in known:
            raise ValueError(f"unknown key 'method_options.{key}' for method {name}; "
                             f"it takes {', '.join(known) or 'no options'}")


def prepare(name: str, model: nn.Module, options: dict[str, Any] | None = None
            ) -> list[nn.Parameter]:
    """Ready `model` for method `name` in place; returns the parameters to train."""
    options = options or {}
    check_options(name, options)
    return method(name).prepare(model, **options)
