"""Bottleneck adapters: a small down-project, nonlinearity, up-project block with a residual,
after each attention and MLP sub-layer (Houlsby et al., 2019, "Parameter-Efficient Transfer
Learning for NLP").

Each adapter computes  h + W_up act(W_down h)  on the sub-layer's output h, before the block's
own residual adds it to the stream. W_up starts at zero, so a fresh adapter changes nothing.
It attaches by a forward hook and a child module named `adapter` on the sub-layer, so the model's
module names (and any LoRA targets) stay as they were. PEFT has no equivalent, so there is no
file format to match: save the adapter with `adapter_state_dict`, a plain safetensors-ready dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.adapt.lora import matches


class Bottleneck(nn.Module):
    """h -> h + up(act(down(h))), hidden -> bottleneck -> hidden."""

    def __init__(self, hidden_size: int, bottleneck_size: int, activation: str = "gelu"):
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck_size)
        self.up = nn.Linear(bottleneck_size, hidden_size)
        self.activation = getattr(F, activation)
        nn.init.zeros_(self.up.weight)  # zero update at the start: the base model, unchanged
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(self.activation(self.down(h)))  # [B, T, hidden]


def _apply_adapter(module: nn.Module, args, out: Tensor) -> Tensor:
    return module.adapter(out)


def apply_bottleneck(model: nn.Module, target_modules: Iterable[str] = ("self_attn", "mlp"),
                     bottleneck_size: int = 16, activation: str = "gelu") -> nn.Module:
    """Freeze `model`, then give every sub-layer whose name matches a target (Llama's
    self_attn and mlp; GPT-2's attn and mlp) a Bottleneck on its output, in place."""
    targets = tuple(target_modules)
    model.requires_grad_(False)
    hidden = model.config.hidden_size
    found = [m for n, m in model.named_modules() if matches(n, targets)]
    if not found:
        raise ValueError(f"no module of the model matches target_modules={list(targets)}")
    param = next(model.parameters())
    for module in found:
        module.adapter = Bottleneck(hidden, bottleneck_size, activation).to(param.device,
                                                                             param.dtype)
        module.register_forward_hook(_apply_adapter)
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The bottleneck adapters' weights (only those), by their names in the model."""
    return {n: p.detach() for n, p in model.named_parameters() if ".adapter." in n}


def attach_bottleneck(model: nn.Module, options: dict) -> list[nn.Parameter]:
    """The fine-tuning method registry's entry: targets, bottleneck_size, activation."""
    apply_bottleneck(model, options.get("target_modules", ("self_attn", "mlp")),
                     options.get("bottleneck_size", 16), options.get("activation", "gelu"))
    return [p for p in model.parameters() if p.requires_grad]
