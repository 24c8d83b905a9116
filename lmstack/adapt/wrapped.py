"""What prompt and prefix tuning share: a frozen causal LM behind a module that changes how it
is called, yet is called (and trained, checkpointed, served) like the model itself."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from lmstack.adapt.peft_folder import write_adapter


class WrappedModel(nn.Module):
    """Freezes `model` and keeps it as `.model`; `config` is the model's, so `generate`, the
    Trainer and the engine size caches and heads from it; `enabled = False` calls the base
    alone. `save_pretrained` (what the Trainer's checkpoints call) writes the adapter as a
    PEFT folder, since the base never changes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        model.requires_grad_(False)
        self.model, self.config = model, model.config
        self.enabled = True

    def peft_config(self) -> dict:
        """This adapter's adapter_config.json fields, as PEFT writes them."""
        raise NotImplementedError

    def peft_tensors(self) -> dict[str, Tensor]:
        """This adapter's weights under PEFT's saved names."""
        raise NotImplementedError

    def save_pretrained(self, folder: str | Path) -> None:
        write_adapter(folder, self.peft_config(), self.peft_tensors())
