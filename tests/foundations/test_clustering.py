"""k-means and DBSCAN against scikit-learn: same start, same centres and labels."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.datasets import make_blobs, make_moons

from lmstack.foundations import clustering as C


def test_kmeans_from_the_same_start_equals_sklearn():
    X, _ = make_blobs(600, centers=5, cluster_std=2.0, random_state=0)
    init = C.kmeans_plus_plus(X, 5, seed=0)
    centres, labels, inertia = C.kmeans(X, 5, init=init)
    ref = KMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0).fit(X)
    np.testing.assert_allclose(centres, ref.cluster_centers_, atol=1e-6)
    assert np.array_equal(labels, ref.labels_)
    assert abs(inertia - ref.inertia_) < 1e-6 * ref.inertia_


def test_dbscan_labels_equal_sklearn():
    X, _ = make_moons(400, noise=0.08, random_state=0)
    ours = C.dbscan(X, eps=0.12, min_samples=5)
    ref = DBSCAN(eps=0.12, min_samples=5).fit(X).labels_
    assert np.array_equal(ours, ref)
    assert ours.max() >= 1 and (ours == -1).any()  # several clusters and some noise: not trivial


def test_a_broken_centre_update_is_caught(monkeypatch):
    X, _ = make_blobs(600, centers=5, cluster_std=2.0, random_state=0)
    init = C.kmeans_plus_plus(X, 5, seed=0)
    # Distances without the |c|^2 term: every point goes to the wrong centre.
    monkeypatch.setattr(C, "sq_distances", lambda X, c: (X * X).sum(1)[:, None] - 2 * X @ c.T)
    centres, _, _ = C.kmeans(X, 5, init=init)
    ref = KMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0).fit(X)
    assert np.abs(centres - ref.cluster_centers_).max() > 1e-3
