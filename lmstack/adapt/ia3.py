"""(IA)³: learned vectors that rescale activations (Liu et al., 2022, "Few-Shot
Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning").

Attention's keys and values are scaled per output feature (y = l * W x); the MLP's
down-projection has its *input* scaled (y = W (l * x)), the "feed-forward" case. Vectors start
at one, so a fresh adapter changes nothing, and merging is a row or column scaling of W. The
vector is PEFT's `ia3_l`, shaped as PEFT keeps it ([out, 1], or [1, in] for feed-forward), so
adapter files map onto it as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from lmstack.adapt.lora import WrappedLinear, matches, wrap_linears

# PEFT's defaults per architecture (model_type -> targets, feed-forward targets).
DEFAULTS = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["q_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
}


class IA3Linear(WrappedLinear):
    """A frozen Linear whose output (or, feed-forward, input) is scaled by `ia3_l`."""

    def __init__(self, base: nn.Linear, is_feedforward: bool):
        super().__init__()
        self.base_layer, self.is_feedforward = base, is_feedforward
        shape = (1, base.in_features) if is_feedforward else (base.out_features, 1)
        self.ia3_l = nn.Parameter(torch.ones(shape, dtype=base.weight.dtype,
                                             device=base.weight.device))
        self.merged = False
        base.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        if self.merged:
            return self.base_layer(x)
        scale = self.ia3_l.flatten()
        if self.is_feedforward:
            return self.base_layer((x * scale).to(x.dtype))
        y = self.base_layer(x)
        return (y * scale).to(y.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """W := W * l (rows, or columns for feed-forward); an output bias scales too."""
        if not self.merged:
            self.base_layer.weight.mul_(self.ia3_l.to(self.weight.dtype))
            if not self.is_feedforward and self.bias is not None:
                self.bias.mul_(self.ia3_l.flatten().to(self.bias.dtype))
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base_layer.weight.div_(self.ia3_l.to(self.weight.dtype))
            if not self.is_feedforward and self.bias is not None:
                self.bias.div_(self.ia3_l.flatten().to(self.bias.dtype))
            self.merged = False

    def extra_repr(self) -> str:
        return f"feedforward={self.is_feedforward}, merged={self.merged}"


def default_targets(model: nn.Module) -> tuple[list[str], list[str]]:
    """PEFT's (target_modules, feedforward_modules) for this model's architecture."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in DEFAULTS:
        raise ValueError(f"no default (IA)3 targets for model_type {model_type!r}; pass "
                         "target_modules and feedforward_modules")
    return DEFAULTS[model_type]


def apply_ia3(model: nn.Module, target_modules: Iterable[str] | None = None,
              feedforward_modules: Iterable[str] | None = None) -> nn.Module:
    """Freeze `model` and wrap each matching Linear in an IA3Linear, in place. Without
    targets, PEFT's defaults for the architecture (Llama: k_proj, v_proj, down_proj)."""
    if target_modules is None:
        target_modules, default_ff = default_targets(model)
        feedforward_modules = default_ff if feedforward_modules is None else feedforward_modules
    feedforward = tuple(feedforward_modules or ())
    wrap_linears(model, target_modules,
                 lambda name, linear: IA3Linear(linear, matches(name, feedforward)))
    return model


def ia3_layers(model: nn.Module) -> dict[str, IA3Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, IA3Linear)}


def attach_ia3(model: nn.Module, options: dict) -> list[nn.Parameter]:
    """The fine-tuning method registry's entry (options named as PEFT's IA3Config)."""
    apply_ia3(model, options.get("target_modules"), options.get("feedforward_modules"))
    return [p for p in model.parameters() if p.requires_grad]
