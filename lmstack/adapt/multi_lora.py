"""Several LoRA adapters on one frozen base: load, switch per call, disable, combine, merge,
and serve a batch whose rows each use their own adapter.

The batched path follows punica / vLLM's multi-LoRA (Chen et al., 2023, "Punica: Multi-Tenant
LoRA Serving"): every adapter's factors are stacked, and each wrapped Linear computes
  y = x W^T + scale[idx] * (x @ A[idx]^T) @ B[idx]^T
with idx the row's adapter index gathered per row (-1 = no adapter, scale 0). Rows with
different adapters thus share one forward pass, one continuous batch, instead of one batch
per adapter. Ranks may differ: smaller ones are zero-padded to the largest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from lmstack.adapt.lora import WrappedLinear, matches, replace
from lmstack.adapt.peft_files import PREFIX
from lmstack.adapt.peft_folder import read_adapter


def check_servable(folder: str | Path, config: dict) -> None:
    """Rows of one batch can each add their own low-rank update, but a DoRA norm, (IA)3 scales
    or a prompt/prefix change the whole forward: only plain LoRA adapters are served this way."""
    kind = "DoRA" if config.get("use_dora") else config.get("peft_type")
    if kind != "LORA":
        raise ValueError(f"{folder} holds a {kind} adapter, but adapters are served side by side "
                         "only as plain LoRA (`lmstack finetune --method lora`); run this one "
                         f"with `lmstack chat MODEL --adapter {folder}`")


class Selection:
    """Which adapter the next forward uses, shared by every layer of one model: one `name`
    for all rows (None = the base model), or `rows` [B] of adapter indices (-1 = none)."""

    def __init__(self):
        self.names: list[str] = []  # adapter index -> name
        self.name: str | None = None
        self.rows: Tensor | None = None


class MultiLoRALinear(WrappedLinear):
    """A frozen Linear with any number of named LoRA adapters beside it."""

    def __init__(self, base: nn.Linear, selection: Selection):
        super().__init__()
        self.base_layer, self.selection = base, selection
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        self.scaling: dict[str, float] = {}
        self._stacked: tuple[Tensor, Tensor, Tensor] | None = None
        base.requires_grad_(False)

    def add(self, name: str, A: Tensor, B: Tensor, scaling: float) -> None:
        w = self.base_layer.weight
        self.lora_A[name] = nn.Parameter(A.to(w.device, w.dtype), requires_grad=False)
        self.lora_B[name] = nn.Parameter(B.to(w.device, w.dtype), requires_grad=False)
        self.scaling[name] = scaling
        self._stacked = None

    def delta_weight(self, name: str) -> Tensor:
        return (self.lora_B[name] @ self.lora_A[name]) * self.scaling[name]  # [out, in]

    def stacked(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every adapter's factors in index order: A [n, r, in], B [n, out, r], scale [n];
        zeros for an adapter that does not target this layer, ranks padded to the largest."""
        if self._stacked is None or self._stacked[2].shape[0] != len(self.selection.names):
            w = self.base_layer.weight
            names = self.selection.names
            r = max((self.lora_A[n].shape[0] for n in names if n in self.lora_A), default=1)
            A = w.new_zeros(len(names), r, self.in_features)
            B = w.new_zeros(len(names), self.out_features, r)
            scale = w.new_zeros(len(names))
            for i, n in enumerate(names):
                if n in self.lora_A:
                    rank = self.lora_A[n].shape[0]
                    A[i, :rank], B[i, :, :rank] = self.lora_A[n], self.lora_B[n]
                    scale[i] = self.scaling[n]
            self._stacked = (A, B, scale)
        return self._stacked

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)
        rows, name = self.selection.rows, self.selection.name
        if rows is not None:  # x [B, T, in], rows [B]
            A, B, scale = self.stacked()
            pick = rows.clamp(min=0)
            s = torch.where(rows >= 0, scale[pick], 0.0)  # [B]
            h = torch.bmm(x, A[pick].transpose(1, 2))  # [B, T, r]
            return y + torch.bmm(h, B[pick].transpose(1, 2)) * s[:, None, None]
        if name is None or name not in self.lora_A:
            return y
        return y + (x @ self.lora_A[name].T @ self.lora_B[name].T) * self.scaling[name]


class MultiLoRA:
    """The adapters of one model (changed in place, as PEFT's PeftModel does); its forward
    stays the model's own, so `generate`, the Trainer and the engine run it unchanged."""

    def __init__(self, model: nn.Module):
        self.model, self.selection = model, Selection()
        model.requires_grad_(False)

    @property
    def names(self) -> list[str]:
        return list(self.selection.names)

    def layers(self) -> dict[str, MultiLoRALinear]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, MultiLoRALinear)}

    def _layer(self, name: str) -> MultiLoRALinear:
        module = self.model.get_submodule(name)
        if isinstance(module, nn.Linear):
            module = MultiLoRALinear(module, self.selection)
            replace(self.model, name, module)
        return module

    def add(self, name: str, factors: dict[str, tuple[Tensor, Tensor, float]]) -> None:
        """Add adapter `name`: {module name: (A [r, in], B [out, r], scaling)}."""
        if not name or ":" in name or name in self.selection.names:
            raise ValueError(f"adapter name {name!r} is empty, holds ':' or is already taken")
        for module, (A, B, scaling) in factors.items():
            self._layer(module).add(name, A, B, scaling)
        self.selection.names.append(name)

    def load(self, name: str, folder: str | Path) -> None:
        """Add a PEFT LoRA folder (one that `save_adapter` or PEFT wrote) as `name`."""
        config, tensors = read_adapter(folder)
        check_servable(folder, config)
        r, alpha = config["r"], config["lora_alpha"]
        scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        targets = config["target_modules"]
        targets = [targets] if isinstance(targets, str) else targets
        factors = {}
        for module, layer in self.model.named_modules():
            if isinstance(layer, nn.Linear | MultiLoRALinear) and matches(module, targets):
                key = f"{PREFIX}{module}"
                if f"{key}.lora_A.weight" not in tensors:
                    raise ValueError(f"{folder}: no weights for {module}; was the adapter "
                                     "trained on another base model?")
                factors[module] = (tensors[f"{key}.lora_A.weight"],
                                   tensors[f"{key}.lora_B.weight"], scaling)
        if not factors:
            raise ValueError(f"{folder}: no Linear of this model matches {targets}")
        self.add(name, factors)

    def index(self, name: str | None) -> int:
        """The adapter's row index for `select_rows`; -1 for None (the base model)."""
        if name is None:
            return -1
        if name not in self.selection.names:
            raise KeyError(f"unknown adapter {name!r}; loaded: {self.selection.names}")
        return self.selection.names.index(name)

    def set_adapter(self, name: str | None) -> None:
        """Every following forward uses adapter `name` (None: the plain base model)."""
        self.index(name)
        self.selection.name, self.selection.rows = name, None

    @contextmanager
    def disable_adapters(self):
        """Run the base model alone inside the block, as PEFT's context manager does."""
        saved = self.selection.name, self.selection.rows
        self.selection.name, self.selection.rows = None, None
        try:
            yield
        finally:
            self.selection.name, self.selection.rows = saved

    def select_rows(self, indices: list[int], device=None) -> bool:
        """Give row b of the next batch adapter indices[b]; True when the batch mixes several
        adapters (then each row's update is gathered), False when one (or none) serves all."""
        distinct = set(indices)
        if len(distinct) == 1:
            (i,) = distinct
            self.selection.name = None if i < 0 else self.selection.names[i]
            self.selection.rows = None
            return False
        self.selection.name = None
        self.selection.rows = torch.tensor(indices, device=device)
        return True

    def add_weighted_adapter(self, adapters: list[str], weights: list[float], name: str,
                             combination_type: str = "linear") -> None:
        """A new adapter from existing ones, as PEFT's add_weighted_adapter. "linear" (equal
        ranks): A = sum sign_i sqrt|w_i s_i| A_i, B = sum sqrt|w_i s_i| B_i, scaling 1 (PEFT's
        numbers, which include cross terms B_i A_j); "cat": the factors side by side, rank
        sum r_i, whose update is exactly sum w_i s_i B_i A_i."""
        for a in adapters:
            self.index(a)
        if combination_type not in ("linear", "cat"):
            raise ValueError(f"combination_type must be 'linear' or 'cat', got {combination_type!r}")
        factors = {}
        for module, layer in self.layers().items():
            present = [(a, w) for a, w in zip(adapters, weights, strict=True) if a in layer.lora_A]
            if not present:
                continue
            if combination_type == "cat":
                A = torch.cat([layer.lora_A[a] * w * layer.scaling[a] for a, w in present])
                B = torch.cat([layer.lora_B[a] for a, _ in present], dim=1)
            else:
                if len({layer.lora_A[a].shape[0] for a, _ in present}) > 1:
                    raise ValueError("linear combination needs adapters of one rank; use 'cat'")
                ws = [w * layer.scaling[a] for a, w in present]
                A = sum(math.copysign(math.sqrt(abs(w)), w) * layer.lora_A[a]
                        for (a, _), w in zip(present, ws, strict=True))
                B = sum(math.sqrt(abs(w)) * layer.lora_B[a]
                        for (a, _), w in zip(present, ws, strict=True))
            factors[module] = (A, B, 1.0)
        self.add(name, factors)

    @torch.no_grad()
    def merge_and_unload(self, name: str) -> nn.Module:
        """Fold adapter `name` into the base weights and put the plain Linears back."""
        self.index(name)
        for module, layer in self.layers().items():
            if name in layer.lora_A:
                weight = layer.base_layer.weight
                weight += layer.delta_weight(name).to(weight.dtype)
            replace(self.model, module, layer.base_layer)
        self.selection.names.clear()
        self.selection.name = self.selection.rows = None
        return self.model


def load_adapters(model: nn.Module, folders: Iterable[tuple[str, str | Path]]) -> MultiLoRA:
    """A MultiLoRA over `model` holding each (name, PEFT LoRA folder)."""
    adapters = MultiLoRA(model)
    for name, folder in folders:
        adapters.load(name, folder)
    return adapters
