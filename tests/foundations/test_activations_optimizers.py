"""Activations, losses and optimisers against torch: values, derivatives, whole trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmstack.foundations import activations as A
from lmstack.foundations import optimizers as O


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_and_its_derivative_match_torch(name):
    x = np.linspace(-30, 30, 1001)  # wide enough that a naive sigmoid would overflow
    t = torch.tensor(x, requires_grad=True)
    out = getattr(torch, name)(t)
    out.sum().backward()
    f, df = A.ACTIVATIONS[name]
    np.testing.assert_allclose(f(x), out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(df(x), t.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("name", ["cross_entropy", "mse"])
def test_loss_and_its_gradient_match_torch(name):
    rng = np.random.default_rng(0)
    if name == "cross_entropy":
        pred, target = rng.standard_normal((16, 5)) * 3, rng.integers(0, 5, 16)
    else:
        pred, target = rng.standard_normal(20), rng.standard_normal(20)
    t = torch.tensor(pred, requires_grad=True)
    reference = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}[name]
    ref = reference(t, torch.tensor(target))
    ref.backward()
    loss, grad = getattr(A, name)(pred, target)
    assert abs(loss - ref.item()) < 1e-12
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-12)


CASES = {
    "sgd": (lambda: O.SGD(1e-3), lambda p: torch.optim.SGD(p, lr=1e-3)),
    "momentum": (lambda: O.SGD(1e-3, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9)),
    "nesterov": (lambda: O.SGD(1e-3, momentum=0.9, nesterov=True, weight_decay=0.01),
                 lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True,
                                           weight_decay=0.01)),
    "rmsprop": (lambda: O.RMSprop(1e-2), lambda p: torch.optim.RMSprop(p, lr=1e-2)),
    "adam": (lambda: O.Adam(1e-2, weight_decay=0.01),
             lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.01)),
    "adamw": (lambda: O.AdamW(1e-2, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
}


def trajectories(ours, theirs, steps=200):
    """Both optimisers walk Rosenbrock's valley from the same start; the paths, step by step."""
    p = np.array([-1.5, 2.0])
    t = torch.tensor(p.copy(), requires_grad=True)
    ref_opt = theirs([t])
    a, b = [], []
    for _ in range(steps):
        ours.step([p], [O.rosenbrock(p)[1]])
        ref_opt.zero_grad()
        x, y = t
        ((1 - x) ** 2 + 100 * (y - x * x) ** 2).backward()
        ref_opt.step()
        a.append(p.copy())
        b.append(t.detach().numpy().copy())
    return np.array(a), np.array(b)


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_trajectory_equals_torch(name):
    ours, theirs = CASES[name]
    a, b = trajectories(ours(), theirs)
    assert np.abs(a - b).max() < 1e-6
    assert np.abs(a[-1] - a[0]).max() > 1e-3  # it really moved


def test_adam_without_bias_correction_is_caught():
    class NoBiasCorrection(O.Adam):
        def step(self, params, grads):
            self.t = 10**9  # makes 1 - beta^t == 1: the early steps come out too small
            super().step(params, grads)

    a, b = trajectories(NoBiasCorrection(1e-2), CASES["adam"][1])
    assert np.abs(a - b).max() > 1e-3
