"""DoRA: LoRA split into a learned magnitude and a normalised direction (Liu et al., 2024,
"DoRA: Weight-Decomposed Low-Rank Adaptation"), as PEFT's `use_dora=True`.

The adapted weight is  W' = m * (W + s B A) / ||W + s B A||,  the norm taken per output row.
m starts at ||W||, so a fresh adapter (B = 0) leaves the layer unchanged. As the paper (4.3)
and PEFT do, the norm is detached: it scales the output but gets no gradient, which saves
the memory of backpropagating through a [out, in] norm.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.adapt.lora import LoRALinear, wrap_linears


class DoRALinear(LoRALinear):
    """A LoRALinear plus `lora_magnitude_vector` [out]: PEFT's name, so its files map 1:1."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
                 use_rslora: bool = False):
        super().__init__(base, r, alpha, dropout, use_rslora)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm().detach())
        self._merge_factor: Tensor | None = None  # m / norm at merge time, to unmerge exactly

    def weight_norm(self) -> Tensor:
        """||W + s B A|| per output row [out], in the adapter's dtype."""
        weight = self.base_layer.weight.to(self.lora_A.weight.dtype) + self.delta_weight()
        return torch.linalg.norm(weight, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)
        if self.merged:
            return y
        scale = self.lora_magnitude_vector / self.weight_norm().detach()  # [out]
        dropped = self.lora_dropout(x.to(self.lora_A.weight.dtype))
        if dropped is x or not self.training:  # W x: the part the magnitude rescales
            bias = self.base_layer.bias
            plain = y if bias is None else y - bias
        else:  # with dropout in training, PEFT rescales W dropout(x) instead
            plain = F.linear(dropped, self.base_layer.weight.to(dropped.dtype))
        update = self.lora_B(self.lora_A(dropped)) * self.scaling
        # m/||.|| (W x + s B A x) + b, written as a correction to y.
        return y + ((scale - 1) * plain + scale * update).to(y.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            factor = self.lora_magnitude_vector / self.weight_norm()
            weight = self.base_layer.weight
            merged = factor[:, None] * (weight.to(factor.dtype) + self.delta_weight())
            weight.copy_(merged.to(weight.dtype))
            self._merge_factor, self.merged = factor, True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            weight = self.base_layer.weight
            original = weight.to(self._merge_factor.dtype) / self._merge_factor[:, None]
            weight.copy_((original - self.delta_weight()).to(weight.dtype))
            self._merge_factor, self.merged = None, False


def apply_dora(model: nn.Module, target_modules: Iterable[str] = ("q_proj", "v_proj"),
               r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
               use_rslora: bool = False) -> nn.Module:
    """apply_lora with DoRA layers: freeze the model, wrap the matching Linears in place."""
    wrap_linears(model, target_modules,
                 lambda _, linear: DoRALinear(linear, r, alpha, dropout, use_rslora))
    return model


def attach_dora(model: nn.Module, options: dict) -> list[nn.Parameter]:
    """The fine-tuning method registry's entry (options named as PEFT's LoraConfig)."""
    apply_dora(model, options.get("target_modules", ("q_proj", "v_proj")),
               r=options.get("r", 8), alpha=options.get("lora_alpha", 8.0),
               dropout=options.get("lora_dropout", 0.0),
               use_rslora=options.get("use_rslora", False))
    return [p for p in model.parameters() if p.requires_grad]
