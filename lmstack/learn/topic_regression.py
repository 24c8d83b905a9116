"""`lmstack learn regression`: linear regression (normal equations, gradient descent, L1 / L2)
and softmax logistic regression, each fitted by lmstack.foundations next to scikit-learn.

Reference: scikit-learn's LinearRegression, Ridge, Lasso and LogisticRegression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import numpy as np
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    from lmstack.foundations import linear as L
    from lmstack.learn import plots

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    steps = 300 if tiny else 3000
    fits = {
        "least squares (normal equations)": (L.fit_closed_form(X, y), LinearRegression()),
        "ridge α=10 (normal equations)": (L.fit_closed_form(X, y, 10.0), Ridge(10.0)),
        "ridge α=10 (gradient descent)": (L.fit_gradient_descent(X, y, l2=10.0 / len(X),
                                                                 steps=steps), Ridge(10.0)),
        "lasso α=0.5 (proximal gradient)": (L.fit_gradient_descent(X, y, l1=0.5, steps=steps),
                                            Lasso(0.5, tol=1e-12, max_iter=100_000)),
    }
    rows, results = [], {}
    for name, (ours, ref) in fits.items():
        ref.fit(X, y)
        gap = float(np.abs(ours.coef - ref.coef_).max())
        rows.append([name, gap, int((ours.coef == 0).sum()), int((ref.coef_ == 0).sum())])
        results[name.split(" (")[0] + " " + name.split("(")[1][:-1] + " max|Δcoef|"] = gap
    curves = {k: v[0].losses for k, v in fits.items() if v[0].losses}
    plots.plot_curves(curves, out / "loss.png", "gradient descent on the diabetes data",
                      "objective", log=True)

    Xi, yi = load_iris(return_X_y=True)
    Xi = StandardScaler().fit_transform(Xi)[:, 2:]  # petal length and width: a 2-D picture
    ours = L.fit_logistic(Xi, yi, C=1.0, steps=300 if tiny else 3000)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(Xi, yi)
    gap = float(np.abs(ours.coef - ref.coef_.T).max())
    acc = float((ours.predict(Xi).argmax(1) == yi).mean())
    results.update({"logistic max|Δcoef|": gap, "logistic accuracy": acc,
                    "sklearn logistic accuracy": float(ref.score(Xi, yi))})
    plots.figure_grid(2, out / "boundary.png", lambda i, ax: plots.plot_boundary(
        (lambda Z: ours.predict(Z).argmax(1)) if i == 0 else ref.predict, Xi, yi, ax,
        "lmstack softmax regression" if i == 0 else "scikit-learn LogisticRegression"))
    lines = [("Diabetes data (442 rows, 10 standardised features): our coefficients against "
             "scikit-learn's on the same data."), "",
             *plots.table(["fit", "max abs coefficient gap", "zeros (ours)", "zeros (sklearn)"],
                          rows), "", "![loss](loss.png)", "",
             (f"Iris petals, softmax regression with C=1: max coefficient gap {gap:.2e}, "
             f"accuracy {acc:.4f} (scikit-learn {results['sklearn logistic accuracy']:.4f})."),
             "", "![boundary](boundary.png)"]
    plots.write_report(out, "Linear and logistic regression", lines)
    return results


TOPIC = Topic("regression", "linear (closed form, GD, L1/L2) and logistic regression vs "
              "scikit-learn", run)
