"""PCA against scikit-learn (explained variance, components) and t-SNE by map quality."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

from lmstack.foundations import pca as P


def test_pca_matches_sklearn():
    X, _ = load_digits(return_X_y=True)
    ours, ref = P.fit_pca(X, 10), PCA(10, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_ratio, ref.explained_variance_ratio_,
                               rtol=1e-9)
    # Components may differ in sign only; compare |cosine| = 1, then the projections' spread.
    np.testing.assert_allclose(np.abs((ours.components * ref.components_).sum(1)), 1, atol=1e-9)
    np.testing.assert_allclose(np.abs(ours.transform(X)), np.abs(ref.transform(X)), atol=1e-6)


def test_tsne_map_is_as_trustworthy_as_sklearns():
    # Coordinates of two t-SNE runs never agree; how well each keeps every point's 5 nearest
    # neighbours (trustworthiness, 1 = all kept) must be within 0.01, and KL(P||Q) close.
    X, _ = load_digits(return_X_y=True)
    X = X[:250]
    Y, kl = P.tsne(X, perplexity=30, steps=500)
    ref = TSNE(2, perplexity=30, random_state=0, init="random", max_iter=500)
    Yr = ref.fit_transform(X)
    ours_t, ref_t = trustworthiness(X, Y, n_neighbors=5), trustworthiness(X, Yr, n_neighbors=5)
    assert ours_t >= ref_t - 0.01 and ours_t > 0.95
    assert kl < ref.kl_divergence_ * 1.25


def test_a_transposed_projection_is_caught():
    X, _ = load_digits(return_X_y=True)
    ours, ref = P.fit_pca(X, 10), PCA(10, svd_solver="full").fit(X)
    ours.components = ours.components[::-1]  # components in the wrong order
    assert np.abs(np.abs(ours.transform(X)) - np.abs(ref.transform(X))).max() > 1e-3
