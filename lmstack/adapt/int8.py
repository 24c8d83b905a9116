"""LoRA on a frozen int8 base, QLoRA-style (Dettmers et al., 2023, "QLoRA: Efficient
Finetuning of Quantized LLMs"), with int8 in place of NF4 to stay tiny.

Each Linear weight is stored as int8 with one scale per output channel (absmax / 127), a
quarter of fp32's memory; the forward dequantizes it on the fly. Only the LoRA factors, kept
in floating point beside it, train. A merge would have to requantize (and lose the update's
small values), so merging into an int8 base is refused; load the float base to merge.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.adapt.lora import LoRALinear, matches, replace, wrap_linears


class Int8Linear(nn.Linear):
    """Weight-only int8 Linear: `qweight` [out, in] int8 and `scale` [out] buffers. An
    nn.Linear to the code that looks for one (adapters attach to it); `weight` reads back the
    dequantized float matrix, and assigning to it is refused."""

    def __init__(self, linear: nn.Linear):
        nn.Module.__init__(self)  # not nn.Linear's: it would allocate a float weight
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127  # [out]
        self.register_buffer("qweight", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(),
                                                                  requires_grad=False)

    @property
    def weight(self) -> Tensor:
        return self.qweight.to(self.scale.dtype) * self.scale[:, None]  # [out, in]

    @weight.setter
    def weight(self, value) -> None:
        raise ValueError("an int8 weight cannot take an update in place (merging LoRA into "
                         "an int8 base would requantize it); merge into the float base")

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.bias)


def quantize_int8(model: nn.Module, skip: Iterable[str] = ("lm_head",)) -> nn.Module:
    """Replace every nn.Linear of `model` (but those named in `skip`) by an Int8Linear, in
    place, frozen. The head is skipped by default: it is often tied to the embeddings."""
    skip = tuple(skip)
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if type(module) is nn.Linear and not matches(name, skip):
            replace(model, name, Int8Linear(module))
    return model


def apply_qlora(model: nn.Module, target_modules: Iterable[str] = ("q_proj", "v_proj"),
                r: int = 8, alpha: float = 8.0, dropout: float = 0.0) -> nn.Module:
    """Quantize the base to int8, then wrap the targets in float LoRA layers."""
    quantize_int8(model)
    wrap_linears(model, target_modules, lambda _, linear: LoRALinear(linear, r, alpha, dropout))
    return model


def attach_qlora(model: nn.Module, options: dict) -> list[nn.Parameter]:
    """The fine-tuning method registry's entry (options named as PEFT's LoraConfig)."""
    apply_qlora(model, options.get("target_modules", ("q_proj", "v_proj")),
                r=options.get("r", 8), alpha=options.get("lora_alpha", 8.0),
                dropout=options.get("lora_dropout", 0.0))
    return [p for p in model.parameters() if p.requires_grad]
