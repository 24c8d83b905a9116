"""Fine-tuning methods by name: how `lmstack finetune --method NAME` readies a model to train
and what it saves afterwards.

A method is `prepare(model, **options) -> (the model to train, its trainable parameters)` (it
freezes the rest) and `save(model, folder, base_model)`; adding one is one line in METHODS (the
pattern of PEFT's PEFT_TYPE_TO_MODEL_MAPPING). Most methods change the model in place and hand
it back; prompt and prefix tuning wrap it (a PromptTuned / PrefixTuned that the Trainer runs
and saves like the model). A prepare that needs the tokenizer (prompt tuning's init text)
takes it as the keyword-only `tokenizer`, which is not a user option.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from lmstack.adapt.bottleneck import adapter_state_dict, apply_bottleneck
from lmstack.adapt.dora import apply_dora
from lmstack.adapt.ia3 import apply_ia3
from lmstack.adapt.lora import apply_lora
from lmstack.adapt.peft_files import save_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned

Prepared = tuple[nn.Module, list[nn.Parameter]]  # (the model to train, its trainable parameters)


@dataclass(frozen=True)
class Method:
    prepare: Callable[..., Prepared]   # (model, **options) -> (model to train, its parameters)
    save: Callable[[nn.Module, Path, str | None], Any]  # (model, folder, base model name)
    saves: str  # what save writes: "adapter" (PEFT folder) or "model" (whole HF folder)


def in_place(model: nn.Module) -> Prepared:
    """What a method that changed `model` in place returns: it, and what now trains."""
    return model, [p for p in model.parameters() if p.requires_grad]


def prepare_full(model: nn.Module) -> Prepared:
    """Every parameter trains."""
    model.requires_grad_(True)
    return in_place(model)


def save_full(model: nn.Module, folder: Path, base_model: str | None = None) -> None:
    model.save_pretrained(folder)


def prepare_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: tuple[str, ...] | list[str] = ("q_proj", "v_proj"),
                 use_rslora: bool = False) -> Prepared:
    """Low-rank factors beside the frozen target Linears (lora.py)."""
    apply_lora(model, target_modules, r, alpha, dropout, use_rslora)
    return in_place(model)


def prepare_dora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: tuple[str, ...] | list[str] = ("q_proj", "v_proj"),
                 use_rslora: bool = False) -> Prepared:
    """LoRA's factors plus a learned magnitude per output row (dora.py)."""
    apply_dora(model, target_modules, r, alpha, dropout, use_rslora)
    return in_place(model)


def prepare_ia3(model: nn.Module, target_modules: list[str] | None = None,
                feedforward_modules: list[str] | None = None) -> Prepared:
    """Learned scaling vectors on keys, values and the MLP's input (ia3.py)."""
    apply_ia3(model, target_modules, feedforward_modules)
    return in_place(model)


def prepare_bottleneck(model: nn.Module, target_modules: tuple[str, ...] | list[str] = (
        "self_attn", "mlp"), bottleneck_size: int = 16, activation: str = "gelu"
        ) -> Prepared:
    """Houlsby bottleneck adapters after attention and MLP (bottleneck.py)."""
    apply_bottleneck(model, target_modules, bottleneck_size, activation)
    return in_place(model)


def prepare_prompt(model: nn.Module, num_virtual_tokens: int = 20,
                   prompt_tuning_init_text: str | None = None, *, tokenizer: Any = None
                   ) -> Prepared:
    """A trainable soft prompt before every sequence (prompt.py); options as PEFT's
    PromptTuningConfig: random init, or the init text's token embeddings (its TEXT init)."""
    ids = None
    if prompt_tuning_init_text:
        if tokenizer is None:
            raise ValueError("method_options.prompt_tuning_init_text needs the model's tokenizer")
        ids = tokenizer.encode(prompt_tuning_init_text, add_special_tokens=False)
    tuned = PromptTuned(model, num_virtual_tokens, ids)
    return tuned, [tuned.prompt_embeddings]


def prepare_prefix(model: nn.Module, num_virtual_tokens: int = 20,
                   prefix_projection: bool = False, encoder_hidden_size: int | None = None
                   ) -> Prepared:
    """Trainable keys and values before every layer's own (prefix.py); options as PEFT's
    PrefixTuningConfig (prefix_projection: the MLP reparameterisation while training)."""
    tuned = PrefixTuned(model, num_virtual_tokens, prefix_projection, encoder_hidden_size)
    return tuned, list(tuned.prefix_encoder.parameters())


def save_bottleneck(model: nn.Module, folder: Path, base_model: str | None = None) -> None:
    """PEFT has no bottleneck format: the adapter weights alone, as safetensors."""
    from safetensors.torch import save_file

    from lmstack.fileio import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in adapter_state_dict(model).items()}
    atomic_write(folder / "bottleneck_adapters.safetensors",
                 lambda tmp: save_file(tensors, tmp, metadata={"base_model": base_model or ""}))


METHODS: dict[str, Method] = {
    "full": Method(prepare_full, save_full, "model"),
    "lora": Method(prepare_lora, save_adapter, "adapter"),
    "dora": Method(prepare_dora, save_adapter, "adapter"),
    "ia3": Method(prepare_ia3, save_adapter, "adapter"),
    "prompt": Method(prepare_prompt, save_adapter, "adapter"),
    "prefix": Method(prepare_prefix, save_adapter, "adapter"),
    "adapter": Method(prepare_bottleneck, save_bottleneck, "adapter"),
}


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; use one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Options must be keyword parameters of the method's prepare function."""
    params = list(inspect.signature(method(name).prepare).parameters.values())
    known = [p.name for p in params[1:]  # the first is the model; keyword-only are ours
             if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in known:
            raise ValueError(f"unknown key 'method_options.{key}' for method {name}; "
                             f"it takes {', '.join(known) or 'no options'}")


def prepare(name: str, model: nn.Module, options: dict[str, Any] | None = None,
            tokenizer: Any = None) -> Prepared:
    """Ready `model` for method `name`: (the model to train, the parameters to train). Train
    and save the returned model: for prompt and prefix tuning it wraps `model`."""
    options = dict(options or {})
    check_options(name, options)
    prepare_fn = method(name).prepare
    if "tokenizer" in inspect.signature(prepare_fn).parameters:
        options["tokenizer"] = tokenizer
    return prepare_fn(model, **options)
