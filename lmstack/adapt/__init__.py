"""Parameter-efficient fine-tuning: LoRA layers and PEFT-compatible adapter files."""

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

__all__ = ["LoRALinear", "apply_lora", "load_adapter", "lora_layers", "merge",
           "merge_and_unload", "parameter_counts", "save_adapter", "unmerge"]
