"""Activation and loss functions with their derivatives, in numpy: what autograd does for us.

Reference: torch.nn.functional (relu, sigmoid, tanh, mse_loss, cross_entropy); the tests hold
each value and each derivative to it.
"""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    # The kink at 0 gets slope 0, as in torch.
    return (x > 0).astype(x.dtype)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Two branches so exp never overflows: for x < 0 use e^x / (1 + e^x).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


ACTIVATIONS = {"relu": (relu, relu_grad), "sigmoid": (sigmoid, sigmoid_grad),
               "tanh": (tanh, tanh_grad)}


def log_softmax(z: np.ndarray) -> np.ndarray:
    # Subtracting the row maximum changes nothing mathematically and keeps exp finite.
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient with respect to `pred`."""
    diff = pred - target
    return float(np.mean(diff ** 2)), 2.0 * diff / diff.size


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over rows, and its gradient with respect to `logits`.

    The gradient is the famous softmax(z) - onehot(y): the log-softmax and the softmax's
    Jacobian cancel, which is why frameworks fuse the two.
    """
    n = len(labels)
    logp = log_softmax(logits)
    loss = -float(logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n
