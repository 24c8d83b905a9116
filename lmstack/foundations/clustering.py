"""k-means (Lloyd's algorithm, k-means++ seeding) and DBSCAN (density-based clusters + noise).

Reference: Lloyd 1982, Arthur & Vassilvitskii 2007 and Ester et al. 1996, as scikit-learn's
KMeans(algorithm="lloyd") and DBSCAN run them: same start -> same centres, same labels.
"""

from __future__ import annotations

import numpy as np


def sq_distances(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one matrix product instead of an n x k x d array.
    return np.maximum((X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None], 0.0)


def kmeans_plus_plus(X: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Each next centre is drawn with probability proportional to its squared distance from
    the nearest centre so far: spread-out starts, far fewer bad local minima."""
    rng = np.random.default_rng(seed)
    centres = [X[rng.integers(len(X))]]
    for _ in range(k - 1):
        d2 = sq_distances(X, np.array(centres)).min(axis=1)
        centres.append(X[rng.choice(len(X), p=d2 / d2.sum())])
    return np.array(centres)


def kmeans(X: np.ndarray, k: int, init: np.ndarray | None = None, max_iter: int = 300,
           tol: float = 1e-10, seed: int = 0):
    """Alternate: assign every point to its nearest centre; move each centre to its points'
    mean. Each half-step can only lower the inertia (sum of squared distances), so it stops.
    Returns (centres, labels, inertia)."""
    C = kmeans_plus_plus(X, k, seed) if init is None else init.astype(float).copy()
    for _ in range(max_iter):
        labels = sq_distances(X, C).argmin(axis=1)
        new = np.array([X[labels == j].mean(axis=0) if np.any(labels == j) else C[j]
                        for j in range(k)])
        shift = ((new - C) ** 2).sum()
        C = new
        if shift <= tol:
            break
    labels = sq_distances(X, C).argmin(axis=1)
    return C, labels, float(sq_distances(X, C).min(axis=1).sum())


def dbscan(X: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Labels 0, 1, ... per cluster and -1 for noise.

    A core point has at least min_samples points (itself included) within eps; a cluster is
    everything reachable from a core point through chains of core points. Border points join
    the first cluster that reaches them, so the order of visits is scikit-learn's (by index).
    """
    neighbours = [np.flatnonzero(row <= eps * eps) for row in sq_distances(X, X)]
    core = np.array([len(nb) >= min_samples for nb in neighbours])
    labels = np.full(len(X), -1)
    cluster = 0
    for start in range(len(X)):
        if labels[start] != -1 or not core[start]:
            continue
        labels[start], stack = cluster, [start]
        while stack:  # grow the cluster outward from core points only
            point = stack.pop()
            for nb in neighbours[point]:
                if labels[nb] == -1:
                    labels[nb] = cluster
                    if core[nb]:
                        stack.append(nb)
        cluster += 1
    return labels
