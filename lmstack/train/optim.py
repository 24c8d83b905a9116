"""Optimizers (AdamW, SGD with momentum, RMSprop) and the linear-warmup + cosine-decay schedule.

Follows Loshchilov & Hutter 2019 (decoupled weight decay) and the GPT-3 / Chinchilla recipe:
warm up linearly, then decay along a half cosine to a floor of min_lr_ratio * lr.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: shrinking norms' gains and biases toward 0 only hurts."""
    decay, no_decay, seen = [], [], set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear twice
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module,
    name: str = "adamw",
    lr: float = 3e-4,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        # foreach=True: one fused kernel launch per group rather than per tensor on CPU too.
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, foreach=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, eps=eps, momentum=momentum, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}; use adamw, sgd or rmsprop")


class WarmupCosine:
    """lr(step) = lr * f(step): linear 0 -> 1 over `warmup`, then cosine 1 -> min_ratio by `total`.

    A plain object rather than a LambdaLR so its state (and the total, which a time-budgeted run
    fixes only after measuring its speed) round-trips through checkpoints as plain numbers.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: int, total: int,
                 min_ratio: float = 0.1):
        self.optimizer, self.warmup, self.total, self.min_ratio = optimizer, warmup, total, min_ratio
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            g["initial_lr"] = lr
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if step >= self.total:
            return self.min_ratio
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"] = lr * f

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "total": self.total, "min_ratio": self.min_ratio,
                "base_lrs": list(self.base_lrs), "step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warmup, self.total = state["warmup"], state["total"]
        self.min_ratio, self.base_lrs = state["min_ratio"], list(state["base_lrs"])
        self.step_count = state["step_count"]
        self._apply()
