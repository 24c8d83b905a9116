"""Linear regression two ways (normal equations; proximal gradient descent with L1/L2) and
multinomial logistic regression by gradient descent.

Reference: scikit-learn's LinearRegression, Ridge, Lasso, ElasticNet and LogisticRegression;
the objectives below use their scaling so the same data gives the same coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmstack.foundations.activations import cross_entropy, softmax


@dataclass
class Linear:
    coef: np.ndarray
    intercept: float | np.ndarray
    losses: list[float] = field(default_factory=list)  # per step, for gradient descent

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept


def _center(X: np.ndarray, y: np.ndarray):
    # Fitting on centred data and recovering the intercept afterwards keeps the intercept out
    # of the penalty, as scikit-learn does.
    mx, my = X.mean(axis=0), y.mean(axis=0)
    return X - mx, y - my, mx, my


def fit_closed_form(X: np.ndarray, y: np.ndarray, alpha: float = 0.0) -> Linear:
    """Minimise ||y - Xw - b||^2 + alpha ||w||^2 (sklearn's Ridge; alpha=0 is least squares).

    Setting the gradient to zero gives the normal equations (X^T X + alpha I) w = X^T y.
    """
    Xc, yc, mx, my = _center(X, y)
    if alpha == 0.0:
        w = np.linalg.lstsq(Xc, yc, rcond=None)[0]  # also right when X^T X is singular
    else:
        w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ yc)
    return Linear(w, my - mx @ w)


def soft_threshold(w: np.ndarray, t: float) -> np.ndarray:
    """The proximal step of t * ||w||_1: shrink towards zero, and stop exactly at zero."""
    return np.sign(w) * np.maximum(np.abs(w) - t, 0.0)


def fit_gradient_descent(X: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0,
                         steps: int = 5000, lr: float | None = None) -> Linear:
    """Minimise 1/(2n) ||y - Xw - b||^2 + l1 ||w||_1 + l2/2 ||w||^2 (sklearn's ElasticNet
    scaling: Lasso(alpha) is l1=alpha; Ridge(alpha) is l2=alpha/n).

    The smooth part takes a gradient step; the L1 part, which has no gradient at zero, takes
    its proximal step (ISTA). With lr = 1/L (L: the gradient's Lipschitz constant) every step
    lowers the loss.
    """
    Xc, yc, mx, my = _center(X, y)
    n = len(X)
    if lr is None:
        lr = 1.0 / (np.linalg.eigvalsh(Xc.T @ Xc / n).max() + l2)
    w = np.zeros(X.shape[1])
    losses = []
    for _ in range(steps):
        residual = Xc @ w - yc
        losses.append(float(residual @ residual / (2 * n) + l1 * np.abs(w).sum()
                            + l2 / 2 * w @ w))
        grad = Xc.T @ residual / n + l2 * w
        w = soft_threshold(w - lr * grad, lr * l1)
    return Linear(w, my - mx @ w, losses)


def fit_logistic(X: np.ndarray, y: np.ndarray, C: float = 1.0, steps: int = 3000,
                 lr: float = 1.0) -> Linear:
    """Softmax (multinomial) regression: minimise mean cross-entropy + ||W||^2 / (2 C n), i.e.
    scikit-learn's C * sum(loss) + ||W||^2 / 2 divided by C n, so the minimiser is the same.

    Plain full-batch gradient descent: the loss is convex, so it reaches the one minimum.
    """
    n, d = X.shape
    k = int(y.max()) + 1
    W, b = np.zeros((d, k)), np.zeros(k)
    losses = []
    for _ in range(steps):
        loss, g = cross_entropy(X @ W + b, y)
        losses.append(loss + (W * W).sum() / (2 * C * n))
        W -= lr * (X.T @ g + W / (C * n))
        b -= lr * g.sum(axis=0)
    return Linear(W, b, losses)


def predict_proba(model: Linear, X: np.ndarray) -> np.ndarray:
    return softmax(model.predict(X))
