"""An exponential moving average of a model's weights, for sampling: the average of the last
~1/(1 - decay) steps' weights denoises better than the last step's alone, most of all after a
short run whose final weights still jump with every batch (standard in DDPM: Ho et al. 2020).

The decay warms up as (1 + n) / (10 + n) (capped at `decay`), as diffusers' EMAModel does, so
the random initial weights leave the average within the first hundred steps.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """shadow <- d * shadow + (1 - d) * weights, after every optimizer step."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()
                       if v.dtype.is_floating_point}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        state = model.state_dict()
        for k, avg in self.shadow.items():
            avg.lerp_(state[k].detach(), 1 - d)                # avg + (1 - d) (w - avg)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Put the averaged weights into `model` (buffers that are not floats stay)."""
        model.load_state_dict(self.shadow, strict=False)
