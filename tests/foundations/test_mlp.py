"""Perceptron and MLP: update rule against scikit-learn, backprop against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import Perceptron
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from lmstack.foundations import mlp as M
from lmstack.foundations.optimizers import Adam


def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.3, random_state=0, stratify=y)


def test_perceptron_weights_equal_sklearn():
    Xtr, _, ytr, _ = digits()
    keep = (ytr == 3) | (ytr == 8)  # a pair that is hard to separate: many updates
    X, y = Xtr[keep], (ytr[keep] == 8).astype(int)
    w, b = M.perceptron(X, y, epochs=10)
    ref = Perceptron(shuffle=False, max_iter=10, tol=None).fit(X, y)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-9)
    assert abs(b - ref.intercept_[0]) < 1e-9


def torch_gradients(model, X, y):
    Ws = [torch.tensor(W, requires_grad=True) for W in model.W]
    bs = [torch.tensor(b, requires_grad=True) for b in model.b]
    h = torch.tensor(X)
    for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        h = h @ W + b
        h = torch.tanh(h) if i < len(Ws) - 1 else h
    torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
    return [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


def test_backprop_equals_autograd():
    Xtr, _, ytr, _ = digits()
    model = M.MLP([64, 32, 16, 10], activation="tanh")
    _, dW, db = model.gradients(Xtr[:50], ytr[:50])
    ref_W, ref_b = torch_gradients(model, Xtr[:50], ytr[:50])
    for ours, ref in zip(dW + db, ref_W + ref_b, strict=True):
        np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_a_wrong_activation_slope_is_caught(monkeypatch):
    Xtr, _, ytr, _ = digits()
    model = M.MLP([64, 32, 16, 10], activation="tanh")
    model.act_grad = lambda z: 1 - np.tanh(z)  # forgot the square
    _, dW, _ = model.gradients(Xtr[:50], ytr[:50])
    ref_W, _ = torch_gradients(model, Xtr[:50], ytr[:50])
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(dW[0], ref_W[0], atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_accuracy_within_three_points_of_sklearn():
    Xtr, Xte, ytr, yte = digits()
    model = M.MLP([64, 64, 10])
    model.fit(Xtr, ytr, Adam(1e-3), epochs=30)
    ours = (model.predict(Xte) == yte).mean()
    ref = MLPClassifier((64,), max_iter=30, batch_size=32, random_state=0).fit(Xtr, ytr)
    assert ours > 0.9 and abs(ours - ref.score(Xte, yte)) <= 0.03
