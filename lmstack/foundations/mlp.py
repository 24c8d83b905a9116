"""Rosenblatt's perceptron and a multi-layer perceptron whose backpropagation is written out.

Reference: Rosenblatt 1958 (scikit-learn's Perceptron) and Rumelhart, Hinton & Williams 1986;
the MLP's gradients are checked against torch autograd and its accuracy against scikit-learn's
MLPClassifier.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from lmstack.foundations.activations import ACTIVATIONS, cross_entropy


def perceptron(X: np.ndarray, y: np.ndarray, epochs: int = 20) -> tuple[np.ndarray, float]:
    """Binary labels in {0, 1}. On every mistake move the boundary towards the missed point:
    w += (+1 or -1) * x. Converges when the classes are linearly separable."""
    w, b = np.zeros(X.shape[1]), 0.0
    sign = np.where(y == 1, 1.0, -1.0)
    for _ in range(epochs):
        for x, s in zip(X, sign, strict=True):
            if s * (x @ w + b) <= 0:
                w += s * x
                b += s
    return w, b


class MLP:
    """Fully connected layers with one activation between them and a softmax at the end."""

    def __init__(self, sizes: list[int], activation: str = "relu", seed: int = 0):
        rng = np.random.default_rng(seed)
        # He/Glorot-style scale 1/sqrt(fan_in) keeps activations from growing layer by layer.
        self.W = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in pairwise(sizes)]
        self.b = [np.zeros(b) for b in sizes[1:]]
        self.act, self.act_grad = ACTIVATIONS[activation]

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Logits, plus what backward needs: each layer's input and pre-activation."""
        inputs, pre = [], []
        h = X
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            inputs.append(h)
            z = h @ W + b
            pre.append(z)
            h = self.act(z) if i < len(self.W) - 1 else z
        return h, inputs, pre

    def gradients(self, X: np.ndarray, y: np.ndarray):
        """Mean cross-entropy and d(loss)/d(every W and b), by the chain rule from the top.

        At each layer: dW = input^T . dz, db = sum of dz, and the error passed down is
        dz . W^T, multiplied by the activation's slope at that layer's pre-activation.
        """
        logits, inputs, pre = self.forward(X)
        loss, dz = cross_entropy(logits, y)
        dW, db = [None] * len(self.W), [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            dW[i], db[i] = inputs[i].T @ dz, dz.sum(axis=0)
            if i:
                dz = (dz @ self.W[i].T) * self.act_grad(pre[i - 1])
        return loss, dW, db

    def fit(self, X: np.ndarray, y: np.ndarray, optimizer, epochs: int = 30,
            batch_size: int = 32, seed: int = 0) -> list[float]:
        """Mini-batch training with any optimiser from foundations/optimizers.py."""
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(epochs):
            order, total = rng.permutation(len(X)), 0.0
            for lo in range(0, len(X), batch_size):
                rows = order[lo:lo + batch_size]
                loss, dW, db = self.gradients(X[rows], y[rows])
                optimizer.step(self.W + self.b, dW + db)
                total += loss * len(rows)
            losses.append(total / len(X))
        return losses

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[0].argmax(axis=1)
