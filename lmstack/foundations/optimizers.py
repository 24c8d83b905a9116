"""SGD (with momentum / Nesterov), RMSprop, Adam and AdamW written from their update rules.

Reference: torch.optim's documented algorithms (same defaults, same order of operations), so a
trajectory here equals torch's to 1e-6 for the same gradients; tests/foundations checks it.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """w <- w - lr * v, where v = momentum * v + g (the first step sets v = g), as torch does."""

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        self.lr, self.momentum, self.nesterov, self.wd = lr, momentum, nesterov, weight_decay
        self.velocity: dict[int, np.ndarray] = {}

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + self.wd * p  # L2 penalty folded into the gradient
            if self.momentum:
                v = self.velocity.get(i)
                v = g.copy() if v is None else self.momentum * v + g
                self.velocity[i] = v
                # Nesterov looks ahead: step along the gradient plus the updated velocity.
                g = g + self.momentum * v if self.nesterov else v
            p -= self.lr * g


class RMSprop:
    """Divide the step by a running root-mean-square of past gradients (Hinton's lecture 6e)."""

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8):
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.square_avg: dict[int, np.ndarray] = {}

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            s = self.alpha * self.square_avg.get(i, np.zeros_like(p)) + (1 - self.alpha) * g * g
            self.square_avg[i] = s
            p -= self.lr * g / (np.sqrt(s) + self.eps)  # eps outside the root, as torch


class Adam:
    """Momentum (first moment) and RMSprop (second moment) with bias correction (Kingma & Ba).

    `decoupled=True` is AdamW (Loshchilov & Hutter): weight decay shrinks the weights directly
    instead of entering the gradient, so the adaptive scaling does not weaken it.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.wd, self.decoupled = weight_decay, decoupled
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.decoupled:
                p *= 1 - self.lr * self.wd
            elif self.wd:
                g = g + self.wd * p
            m = self.b1 * self.m.get(i, np.zeros_like(p)) + (1 - self.b1) * g
            v = self.b2 * self.v.get(i, np.zeros_like(p)) + (1 - self.b2) * g * g
            self.m[i], self.v[i] = m, v
            # Both moments start at zero, so early averages are too small: divide that out.
            m_hat = m / (1 - self.b1 ** self.t)
            v_hat = v / (1 - self.b2 ** self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def AdamW(lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2) -> Adam:
    """torch.optim.AdamW's defaults (weight decay 0.01, decoupled)."""
    return Adam(lr, betas, eps, weight_decay, decoupled=True)


def rosenbrock(p: np.ndarray) -> tuple[float, np.ndarray]:
    """The banana-shaped valley every optimiser demo uses: value and gradient at (x, y)."""
    x, y = p
    value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return float(value), grad
