"""Noise schedules and samplers for diffusion: the forward process q(x_t | x_0) and the reverse
steps of DDPM (ancestral, fixed-small variance) and DDIM (deterministic at eta 0).

References: Ho et al. 2020 (DDPM), Nichol & Dhariwal 2021 (the cosine schedule), Song et al.
2021 (DDIM). Conventions follow diffusers' DDPMScheduler / DDIMScheduler (epsilon prediction,
x_0 clipped to [-1, 1], "leading" / "trailing" timestep spacing), and the tests hold every
number to theirs, so a schedule trained here samples the same there and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]
Spacing = Literal["leading", "trailing"]


def make_betas(kind: BetaSchedule, steps: int, beta_start: float = 1e-4,
               beta_end: float = 0.02) -> Tensor:
    """[steps] float32: how much noise each forward step adds."""
    if kind == "linear":  # DDPM's own: 1e-4 .. 0.02 over 1000 steps
        return torch.linspace(beta_start, beta_end, steps, dtype=torch.float32)
    if kind == "scaled_linear":  # Stable Diffusion's: linear in sqrt(beta)
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float32) ** 2
    if kind == "squaredcos_cap_v2":
        # Choose alpha_bar(t) = cos^2 (a slow start: the linear schedule destroys small images
        # in a few steps) and recover each beta from neighbouring alpha_bars, capped at 0.999
        # so the last step never divides by zero.
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor([min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999)
                             for i in range(steps)], dtype=torch.float32)
    raise ValueError(f"unknown beta schedule {kind!r}; use linear, scaled_linear or "
                     "squaredcos_cap_v2")


@dataclass
class NoiseSchedule:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s): the share of x_0's signal left at step t."""
    train_steps: int = 1000
    beta_schedule: BetaSchedule = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    clip_sample: bool = True          # clamp the predicted x_0 to the data's [-1, 1]

    def __post_init__(self):
        self.betas = make_betas(self.beta_schedule, self.train_steps, self.beta_start,
                                self.beta_end)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

    def alpha_bar(self, t: int | Tensor) -> Tensor:
        """alpha_bar at t; 1 before the first step (t < 0: the clean image)."""
        t = int(t)
        return self.alphas_cumprod[t] if t >= 0 else torch.tensor(1.0)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """The forward process in one jump: x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps."""
        a = self.alphas_cumprod.to(x0.device, x0.dtype)[t]            # [B]
        a = a.reshape(-1, *([1] * (x0.dim() - 1)))                     # [B, 1, 1, 1]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def timesteps(self, n: int, spacing: Spacing = "leading") -> list[int]:
        """The n steps a sampler visits, last (noisiest) first."""
        if not 1 <= n <= self.train_steps:
            raise ValueError(f"sampling steps must be 1..{self.train_steps}, got {n}")
        if spacing == "leading":  # 0, r, 2r, ...: never visits the last training step
            return [int(t) for t in (np.arange(n) * (self.train_steps // n)).round()[::-1]]
        if spacing == "trailing":  # ends at T-1: starts from pure noise (Lin et al. 2024)
            ts = np.round(np.arange(self.train_steps, 0, -self.train_steps / n)).astype(np.int64)
            return [int(t) - 1 for t in ts]
        raise ValueError(f"unknown timestep spacing {spacing!r}; use leading or trailing")

    def predict_x0(self, eps: Tensor, t: int, x: Tensor) -> Tensor:
        """Invert the forward process with the predicted noise (clipped to the data range)."""
        a = self.alpha_bar(t)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return x0.clamp(-1, 1) if self.clip_sample else x0

    def ddpm_step(self, eps: Tensor, t: int, prev_t: int, x: Tensor,
                  noise: Tensor | None) -> Tensor:
        """x_{prev_t} ~ q(x_prev | x_t, x_0): the Gaussian posterior, mean from x_0 and x_t,
        variance beta_tilde ("fixed_small"); no noise on the last step (t = 0)."""
        a_t, a_prev = self.alpha_bar(t), self.alpha_bar(prev_t)
        alpha_t = a_t / a_prev                     # one step's alpha, across skipped steps too
        beta_t = 1 - alpha_t
        x0 = self.predict_x0(eps, t, x)
        mean = (a_prev.sqrt() * beta_t / (1 - a_t)) * x0 + \
            (alpha_t.sqrt() * (1 - a_prev) / (1 - a_t)) * x
        if t == 0:
            return mean
        variance = torch.clamp((1 - a_prev) / (1 - a_t) * beta_t, min=1e-20)
        return mean + variance.sqrt() * noise

    def ddim_step(self, eps: Tensor, t: int, prev_t: int, x: Tensor, eta: float = 0.0,
                  noise: Tensor | None = None) -> Tensor:
        """x_prev = sqrt(a_prev) x_0 + sqrt(1 - a_prev - s^2) eps + s z, s = eta * sigma_t:
        the same marginals as DDPM but a free choice of how much fresh noise (none at eta 0)."""
        a_t, a_prev = self.alpha_bar(t), self.alpha_bar(prev_t)
        x0 = self.predict_x0(eps, t, x)
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        x_prev = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).sqrt() * eps
        return x_prev + sigma * noise if eta > 0 else x_prev

    def prev_timesteps(self, timesteps: list[int], sampler: str) -> list[int]:
        """Where each step lands. DDPM goes to the next visited step; DDIM (as diffusers) to
        t - T // n, which differs only for "trailing" spacing with n not dividing T."""
        if sampler == "ddim":
            return [t - self.train_steps // len(timesteps) for t in timesteps]
        return [*timesteps[1:], -1]
