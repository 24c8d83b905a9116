"""Fine-tuning methods by name: how `lmstack finetune --method NAME` readies a model to train
and what it saves afterwards.

A method is `prepare(model, **options) -> the trainable parameters` (it freezes the rest) and
`save(model, folder, base_model)`; adding one is one line in METHODS (the pattern of PEFT's
PEFT_TYPE_TO_MODEL_MAPPING). Names listed in PLANNED but not yet registered get a one-line
"not available" error rather than an unknown-name one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

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


METHODS: dict[str, Method] = {
    "full": Method(prepare_full, save_full, "model"),
    "lora": Method(prepare_lora, save_adapter, "adapter"),
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
