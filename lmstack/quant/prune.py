"""Unstructured magnitude pruning, one-shot or gradual along Zhu & Gupta's cubic schedule.

Zhu & Gupta 2017, "To prune, or not to prune": zero the smallest-magnitude weights, raising the
sparsity from s_i to s_f over n steps as s_t = s_f + (s_i - s_f)(1 - t/n)³ (fast at first,
while redundant weights abound, slowly near the end), and keep training so the survivors
compensate. Each weight matrix of the decoder blocks (the *_proj linears) is pruned to the same
sparsity; embeddings, the head and norms stay dense, as in the paper's language models.
The zeros only save memory and time with sparse storage and kernels; the dense matmul here
costs the same, which the compress benchmark shows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cubic_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0
                   ) -> float:
    """Zhu & Gupta's schedule: `initial` until `begin`, `final` from `end` on, cubic between."""
    if step <= begin:
        return initial
    progress = min(1.0, (step - begin) / max(1, end - begin))
    return final + (initial - final) * (1.0 - progress) ** 3


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The decoder blocks' projection matrices (q/k/v/o, gate/up/down), by module name."""
    return {name: m.weight for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rpartition(".")[2].endswith("_proj")}


def magnitude_mask(weight: Tensor, sparsity: float) -> Tensor:
    """Boolean mask of `weight`'s shape keeping all but its round(sparsity · n) smallest |w|."""
    n_pruned = round(sparsity * weight.numel())
    keep = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    keep[weight.detach().abs().flatten().argsort()[:n_pruned]] = False
    return keep.view_as(weight)


class MagnitudePruner:
    """Masks for a model's projection weights, raised along the cubic schedule as it trains.

    `attach(optimizer)` runs `step` after every optimizer step: the optimizer may move a pruned
    weight (momentum, weight decay), so the mask is applied again each time, and a mask only
    ever loses entries, so a pruned weight stays zero for the rest of training.
    """

    def __init__(self, model: nn.Module, final_sparsity: float, begin_step: int = 0,
                 end_step: int = 0, every: int = 1, initial_sparsity: float = 0.0):
        if not 0.0 <= final_sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), not {final_sparsity}")
        self.weights = prunable_weights(model)
        if not self.weights:
            raise ValueError(f"{type(model).__name__} has no *_proj linear layers to prune")
        self.masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in self.weights.items()}
        self.final, self.initial = final_sparsity, initial_sparsity
        self.begin, self.end, self.every = begin_step, end_step, every
        self.steps = 0
        self.target = 0.0  # the sparsity the masks were last set to

    @torch.no_grad()
    def set_sparsity(self, sparsity: float) -> None:
        """Prune every weight to `sparsity` by magnitude (already pruned ones are 0, so they
        are the first chosen), then zero what the masks exclude."""
        for name, weight in self.weights.items():
            self.masks[name] &= magnitude_mask(weight * self.masks[name], sparsity)
        self.target = sparsity
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for name, weight in self.weights.items():
            weight.mul_(self.masks[name])

    def step(self) -> None:
        """One training step done: raise the sparsity if the schedule says so, re-zero."""
        self.steps += 1
        target = cubic_sparsity(self.steps, self.final, self.begin, self.end, self.initial)
        if target > self.target and (self.steps % self.every == 0 or self.steps >= self.end):
            self.set_sparsity(target)
        else:
            self.apply()

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Run `step` after each of the optimizer's steps (the Trainer needs no change)."""
        optimizer.register_step_post_hook(lambda *_: self.step())

    def sparsity(self) -> float:
        """The fraction of the prunable weights that are zero now."""
        zeros = sum(int((w == 0).sum()) for w in self.weights.values())
        return zeros / sum(w.numel() for w in self.weights.values())


def prune_magnitude(model: nn.Module, sparsity: float) -> MagnitudePruner:
    """One-shot: prune every projection matrix of `model` to `sparsity`, in place."""
    pruner = MagnitudePruner(model, sparsity)
    pruner.set_sparsity(sparsity)
    return pruner
