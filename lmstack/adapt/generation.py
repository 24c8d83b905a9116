"""A PEFT adapter folder made ready for generation on one model: whatever it holds (LoRA, DoRA,
(IA)3, prompt or prefix tuning), a model that `generate` and the engine run as fast as they can.

Follows PEFT's `merge_and_unload` for the weight adapters: their update folded into the base
weights leaves a plain model (the engine's fused q/k/v, column-major weights and GGUF export
see no adapter). A soft prompt becomes its prefix, its keys and values computed once.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from lmstack.adapt.ia3 import ia3_layers
from lmstack.adapt.lora import merge_and_unload, replace
from lmstack.adapt.peft_files import load_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned, as_prefix


def load_adapter_for_generation(model: nn.Module, folder: str | Path) -> nn.Module:
    """`model` with the adapter in `folder` applied, ready to generate (frozen, eval mode)."""
    adapted = load_adapter(model, folder)
    if isinstance(adapted, PromptTuned):
        adapted = as_prefix(adapted)
    if isinstance(adapted, PrefixTuned):
        return adapted.eval()
    for name, layer in ia3_layers(adapted).items():
        layer.merge()
        replace(adapted, name, layer.base_layer)
    return merge_and_unload(adapted).eval()  # LoRA and DoRA
