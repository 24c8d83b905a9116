"""Config dataclasses shared by the model families, readable from and writable to HF config.json.

Field names are Hugging Face's, so `config.json` maps onto a dataclass one key per field; keys
we do not model are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class ModelConfig:
    """Base of every family's config: the HF bookkeeping fields plus round-trip of the rest."""

    model_type: ClassVar[str] = ""
    architectures: list[str] | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    torch_dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        # transformers >= 5 writes "dtype"; older versions and most hub checkpoints "torch_dtype".
        if "dtype" in d and d.get("dtype") is not None:
            d.setdefault("torch_dtype", d["dtype"])
        d.pop("dtype", None)
        if d.get("torch_dtype") is None:
            d.pop("torch_dtype", None)
        cls._normalise(d)
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k != "model_type"}
        return cls(**known, extra=extra)

    @classmethod
    def _normalise(cls, d: dict[str, Any]) -> None:
        """Hook for families whose keys changed between transformers versions."""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}
        d = {**self.extra, **d, "model_type": self.model_type}
        return {k: v for k, v in d.items() if v is not None}
