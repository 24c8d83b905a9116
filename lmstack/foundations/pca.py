"""PCA through the singular value decomposition, and exact t-SNE for 2-D maps of the data.

Reference: scikit-learn's PCA (full SVD, explained variance S^2 / (n-1)) and van der Maaten &
Hinton 2008 as scikit-learn's TSNE runs it (perplexity search, early exaggeration, gains).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmstack.foundations.clustering import sq_distances


@dataclass
class PCA:
    mean: np.ndarray
    components: np.ndarray          # [k, d], rows orthonormal, largest variance first
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) @ self.components.T


def fit_pca(X: np.ndarray, k: int) -> PCA:
    """The right singular vectors of the centred data are the directions of most variance;
    the singular values squared over n-1 are the variances along them."""
    mean = X.mean(axis=0)
    _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    # A singular vector's sign is arbitrary; fix it so the largest entry is positive, which
    # makes runs (and the comparison with scikit-learn) repeatable.
    signs = np.sign(Vt[np.arange(len(Vt)), np.abs(Vt).argmax(axis=1)])
    Vt = Vt * signs[:, None]
    var = S ** 2 / (len(X) - 1)
    return PCA(mean, Vt[:k], var[:k], var[:k] / var.sum())


def affinities(X: np.ndarray, perplexity: float = 30.0) -> np.ndarray:
    """Symmetric P: each point's Gaussian over the others, its width found by bisection so the
    distribution's perplexity (2^entropy, an effective number of neighbours) is `perplexity`."""
    D = sq_distances(X, X)
    n, target = len(X), np.log(perplexity)
    P = np.zeros((n, n))
    for i in range(n):
        d = np.delete(D[i], i)
        lo, hi, beta = 0.0, np.inf, 1.0
        for _ in range(100):
            p = np.exp(-(d - d.min()) * beta)
            p /= p.sum()
            entropy = -(p * np.log(np.maximum(p, 1e-300))).sum()
            if abs(entropy - target) < 1e-5:
                break
            if entropy > target:  # too flat: narrow the Gaussian
                lo, beta = beta, beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi, beta = beta, (beta + lo) / 2
        P[i, np.arange(n) != i] = p
    return np.maximum((P + P.T) / (2 * n), 1e-12)


def tsne(X: np.ndarray, perplexity: float = 30.0, steps: int = 1000, lr: float | None = None,
         seed: int = 0) -> tuple[np.ndarray, float]:
    """Place points in 2-D so that a heavy-tailed (Student-t) similarity Q matches P; returns
    the map and the final KL(P || Q). Exact O(n^2) gradient: fine up to a few thousand points.
    """
    n = len(X)
    P = affinities(X, perplexity)
    rng = np.random.default_rng(seed)
    Y = 1e-4 * rng.standard_normal((n, 2))
    lr = lr or max(n / 12.0 / 4, 50)  # scikit-learn's "auto": n / early_exaggeration / 4
    velocity, gains = np.zeros_like(Y), np.ones_like(Y)
    for it in range(steps):
        # Early exaggeration: inflating P for the first 250 steps lets clusters form and move
        # apart before the fine structure is settled.
        exaggeration, momentum = (12.0, 0.5) if it < 250 else (1.0, 0.8)
        W = 1.0 / (1.0 + sq_distances(Y, Y))   # Student-t kernel, unnormalised
        np.fill_diagonal(W, 0.0)
        Q = np.maximum(W / W.sum(), 1e-12)
        grad = 4 * ((exaggeration * P - Q) * W) @ np.ones(n)[:, None] * Y \
            - 4 * ((exaggeration * P - Q) * W) @ Y
        # Gains (Jacobs 1988): grow the step while the gradient keeps its sign.
        same = np.sign(grad) == np.sign(velocity)
        gains = np.maximum(np.where(same, gains * 0.8, gains + 0.2), 0.01)
        velocity = momentum * velocity - lr * gains * grad
        Y = Y + velocity
    kl = float((P * np.log(P / Q)).sum())
    return Y, kl
