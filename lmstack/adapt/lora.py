"""LoRA: low-rank adapters beside frozen Linear layers (Hu et al., 2021, "LoRA: Low-Rank
Adaptation of Large Language Models"; rsLoRA: Kalajdzievski, 2023).

A wrapped layer computes  y = W x + b + (B A dropout(x)) * scaling,  with A [r, in] and B
[out, r]; scaling is alpha / r (alpha / sqrt(r) with rsLoRA). B starts at zero, so a fresh
adapter leaves the model's output exactly as it was. The names (`base_layer`, `lora_A`,
`lora_B`) and the initialisation follow Hugging Face PEFT, the parity reference, so its
adapter files map onto ours key for key (see `lmstack/adapt/peft_files.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn


class WrappedLinear(nn.Module):
    """A module standing in for the frozen `nn.Linear` it keeps as `base_layer`: code that
    reads a Linear's shape or weight (dtype checks, exporters) sees the base's."""

    base_layer: nn.Linear

    @property
    def weight(self) -> Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base_layer.bias

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features


class LoRALinear(WrappedLinear):
    """An `nn.Linear` plus a trainable low-rank update; the base layer is frozen."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
                 use_rslora: bool = False):
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank r must be positive, got {r}")
        self.base_layer = base
        self.r, self.alpha, self.use_rslora = r, alpha, use_rslora
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(base.in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, **factory)
        # PEFT's default init: A like a fresh nn.Linear (Kaiming-uniform, a=sqrt(5)), B zero.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.merged = False
        base.requires_grad_(False)

    def delta_weight(self) -> Tensor:
        """The update B A * scaling, shaped like the base weight [out, in]."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)
        if self.merged:  # the update already lives inside the base weight
            return y
        update = self.lora_B(self.lora_A(self.lora_dropout(x.to(self.lora_A.weight.dtype))))
        return y + (update * self.scaling).to(y.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: one matmul per call, no extra latency."""
        if not self.merged:
            self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out (up to rounding), e.g. to keep training or switch adapters."""
        if self.merged:
            self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


def matches(name: str, target_modules: Iterable[str]) -> bool:
    """PEFT's rule for a list of targets: the module's full name, or its last dotted parts."""
    return any(name == t or name.endswith("." + t) for t in target_modules)


def wrap_linears(model: nn.Module, target_modules: Iterable[str],
                 wrap: Callable[[str, nn.Linear], nn.Module]) -> dict[str, nn.Module]:
    """Freeze every parameter of `model`, then replace each `nn.Linear` whose name matches a
    target with `wrap(name, linear)`, in place: the one way every adapter here attaches."""
    targets = tuple(target_modules)
    model.requires_grad_(False)
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and matches(name, targets)]
    if not found:
        raise ValueError(f"no nn.Linear in the model matches target_modules={list(targets)}")
    wrapped = {}
    for name, linear in found:
        wrapped[name] = wrap(name, linear)
        replace(model, name, wrapped[name])
    return wrapped


def replace(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put `module` where the submodule called `name` was."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def apply_lora(model: nn.Module, target_modules: Iterable[str] = ("q_proj", "v_proj"),
               r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
               use_rslora: bool = False) -> nn.Module:
    """Freeze every parameter of `model`, then wrap each `nn.Linear` whose name matches a
    target in a `LoRALinear`, in place. Returns the model; only the LoRA factors train."""
    wrap_linears(model, target_modules,
                 lambda _, linear: LoRALinear(linear, r, alpha, dropout, use_rslora))
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRA layer of `model`, by its module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer's update into its base weight."""
    for layer in lora_layers(model).values():
        layer.merge()
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Undo `merge` on every LoRA layer."""
    for layer in lora_layers(model).values():
        layer.unmerge()
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every update, then put the plain base Linears back: the model is an ordinary one
    again (its state dict, `save_pretrained` and the engine's fused q/k/v see no LoRA). Its
    parameters stay frozen, as apply_lora left them; `requires_grad_(True)` to train it all."""
    for name, layer in lora_layers(model).items():
        layer.merge()
        replace(model, name, layer.base_layer)
    return model


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, as PEFT's `get_nb_trainable_parameters` gives."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
