"""Parameter-efficient fine-tuning: LoRA, DoRA, (IA)3, prompt and prefix tuning, and
PEFT-compatible adapter files."""

from lmstack.adapt.dora import DoRALinear, apply_dora
from lmstack.adapt.ia3 import IA3Linear, apply_ia3, ia3_layers
from lmstack.adapt.lora import (
    LoRALinear,
    apply_lora,
    lora_layers,
    merge,
    merge_and_unload,
    parameter_counts,
    unmerge,
)
from lmstack.adapt.peft_files import load_adapter, save_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned

__all__ = ["DoRALinear", "IA3Linear", "LoRALinear", "PrefixTuned", "PromptTuned", "apply_dora",
           "apply_ia3", "apply_lora", "ia3_layers", "load_adapter", "lora_layers", "merge",
           "merge_and_unload", "parameter_counts", "save_adapter", "unmerge"]
