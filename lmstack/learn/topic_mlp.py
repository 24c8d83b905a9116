"""`lmstack learn mlp`: the perceptron and an MLP trained by hand-written backprop, with each
activation, next to scikit-learn's Perceptron and MLPClassifier on the digits.

Reference: scikit-learn's Perceptron and MLPClassifier; backprop is checked against torch
autograd in tests/foundations/test_mlp.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Perceptron
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from lmstack.foundations.mlp import MLP, perceptron
    from lmstack.foundations.optimizers import Adam
    from lmstack.learn import plots

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16, y, test_size=0.3, random_state=0, stratify=y)
    epochs = 3 if tiny else 40
    results: dict[str, Any] = {}
    # The perceptron separates two digits; 3 against 8 look alike, so it has work to do.
    keep_tr, keep_te = np.isin(ytr, [3, 8]), np.isin(yte, [3, 8])
    w, b = perceptron(Xtr[keep_tr], ytr[keep_tr] == 8, epochs=epochs)
    ours = float(((Xte[keep_te] @ w + b > 0) == (yte[keep_te] == 8)).mean())
    ref = Perceptron(shuffle=False, max_iter=epochs, tol=None).fit(Xtr[keep_tr], ytr[keep_tr] == 8)
    results["perceptron 3-vs-8 accuracy"] = round(ours, 4)
    results["sklearn perceptron accuracy"] = round(float(ref.score(Xte[keep_te],
                                                                   yte[keep_te] == 8)), 4)
    results["perceptron max|Δweight|"] = float(np.abs(w - ref.coef_[0]).max())
    curves, rows = {}, []
    for act in ("relu", "tanh", "sigmoid"):
        model = MLP([64, 64, 10], activation=act)
        curves[act] = model.fit(Xtr, ytr, Adam(1e-3), epochs=epochs)
        acc = float((model.predict(Xte) == yte).mean())
        with warnings.catch_warnings():  # a fixed epoch budget, on purpose
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = MLPClassifier((64,), activation="logistic" if act == "sigmoid" else act,
                                max_iter=epochs, batch_size=32, random_state=0).fit(Xtr, ytr)
        rows.append([f"64-64-10, {act}", acc, float(ref.score(Xte, yte))])
        results[f"mlp {act} accuracy"] = round(acc, 4)
        results[f"sklearn mlp {act} accuracy"] = round(rows[-1][2], 4)
    plots.plot_curves(curves, out / "loss.png", "MLP training loss (cross-entropy), Adam 1e-3",
                      "mean cross-entropy per epoch")
    lines = [("Digits, 70/30 split, pixels scaled to [0, 1]. Same architecture, optimiser "
             f"(Adam 1e-3), batch 32 and {epochs} epochs on both sides."), "",
             *plots.table(["model", "lmstack test accuracy", "scikit-learn"], rows), "",
             (f"Perceptron, 3 vs 8: accuracy {results['perceptron 3-vs-8 accuracy']:.4f} "
              f"(scikit-learn {results['sklearn perceptron accuracy']:.4f}); the weights "
              f"differ from scikit-learn's by at most {results['perceptron max|Δweight|']:.1e}."),
             "", "![loss](loss.png)"]
    plots.write_report(out, "Perceptron and MLP with backpropagation", lines)
    return results


TOPIC = Topic("mlp", "perceptron and a backprop MLP (ReLU/tanh/sigmoid) vs scikit-learn", run)
