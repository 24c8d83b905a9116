"""Parameter-efficient fine-tuning: LoRA, DoRA, (IA)3, prompt and prefix tuning, bottleneck
adapters, LoRA on an int8 base; several adapters on one base; PEFT-compatible adapter files."""

from lmstack.adapt.bottleneck import apply_bottleneck
from lmstack.adapt.dora import DoRALinear, apply_dora
from lmstack.adapt.ia3 import IA3Linear, apply_ia3, ia3_layers
from lmstack.adapt.int8 import Int8Linear, apply_qlora, quantize_int8
from lmstack.adapt.lora import (
    LoRALinear,
    apply_lora,
    lora_layers,
    merge,
    merge_and_unload,
    parameter_counts,
    unmerge,
)
from lmstack.adapt.multi_lora import MultiLoRA, load_adapters
from lmstack.adapt.peft_files import load_adapter, save_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned

__all__ = ["DoRALinear", "IA3Linear", "Int8Linear", "LoRALinear", "MultiLoRA", "PrefixTuned",
           "PromptTuned", "apply_bottleneck", "apply_dora", "apply_ia3", "apply_lora",
           "apply_qlora", "ia3_layers", "load_adapter", "load_adapters", "lora_layers", "merge",
           "merge_and_unload", "parameter_counts", "quantize_int8", "save_adapter", "unmerge"]
