"""What every lmstack model shares: weight init, parameter counts, HF-folder load and save.

Modelled on transformers' PreTrainedModel, minus the machinery: a model is a plain nn.Module
built from a config dataclass, and its state_dict keys are the HF checkpoint's keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from lmstack.models.config import ModelConfig


class PretrainedModel(nn.Module):
    config_class: ClassVar[type[ModelConfig]]
    # Prefix of the backbone inside task models ("model", "transformer", "bert"), so a bare
    # backbone checkpoint loads into a model with a head and the other way round.
    base_model_prefix: ClassVar[str] = ""

    config: ModelConfig
    gradient_checkpointing: bool = False

    def tied_weights(self) -> dict[str, str]:
        """{key: source key} for parameters that share storage with another (not saved)."""
        return {}

    def tie_weights(self) -> None:
        """Make each tied parameter share its source's storage (e.g. lm_head = embeddings)."""
        for dst, src in self.tied_weights().items():
            owner, _, name = dst.rpartition(".")
            setattr(self.get_submodule(owner), name, self.get_parameter(src))

    def init_weights(self) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        seen, total = set(), 0
        for name, p in self.named_parameters():
            if id(p) in seen or (exclude_embeddings and isinstance(
                self.get_submodule(name.rsplit(".", 1)[0]), nn.Embedding
            )):
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them."""
        for m in self.modules():
            if isinstance(m, PretrainedModel):
                m.gradient_checkpointing = enabled

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, dtype: torch.dtype | None = None, device=None
    ) -> PretrainedModel:
        from lmstack.models.hub import load_model

        return load_model(folder, dtype=dtype, device=device, model_class=cls)

    def save_pretrained(self, folder: str | Path, max_shard_bytes: int | None = None) -> None:
        from lmstack.models.hub import save_model

        save_model(self, folder, max_shard_bytes=max_shard_bytes)
