"""`lmstack learn pca`: PCA by SVD and exact t-SNE from lmstack.foundations, as 2-D maps of
the 8x8 digits, next to scikit-learn's PCA and TSNE.

Reference: scikit-learn's PCA (explained variance) and TSNE (trustworthiness, KL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE, trustworthiness

    from lmstack.foundations.pca import fit_pca, tsne
    from lmstack.learn import plots

    X, y = load_digits(return_X_y=True)
    ours, ref = fit_pca(X, 10), PCA(10, svd_solver="full").fit(X)
    Z = ours.transform(X)
    plots.plot_scatter(Z[:, :2], y, out / "pca.png", "digits: first two principal components")
    # Exact t-SNE costs n^2 per step; a class-balanced subset keeps it well inside a minute.
    per_class, steps = (20, 300) if tiny else (50, 750)
    pick = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    Y, kl = tsne(X[pick], steps=steps)
    ts = TSNE(2, random_state=0, init="random", max_iter=steps)
    Yr = ts.fit_transform(X[pick])
    plots.plot_scatter(Y, y[pick], out / "tsne.png", "digits: lmstack t-SNE")
    plots.plot_scatter(Yr, y[pick], out / "tsne-sklearn.png", "digits: scikit-learn t-SNE")
    results = {
        "pca explained variance ratio (10)": round(float(ours.explained_variance_ratio.sum()), 6),
        "sklearn explained variance ratio (10)":
            round(float(ref.explained_variance_ratio_.sum()), 6),
        "pca max relative variance gap": float(np.abs(
            ours.explained_variance / ref.explained_variance_ - 1).max()),
        "tsne points": len(pick),
        "tsne trustworthiness (5-NN)": round(float(trustworthiness(X[pick], Y, n_neighbors=5)), 4),
        "sklearn tsne trustworthiness": round(float(trustworthiness(X[pick], Yr, n_neighbors=5)),
                                              4),
        "tsne KL(P||Q)": round(kl, 4), "sklearn tsne KL": round(float(ts.kl_divergence_), 4),
    }
    intro = ("PCA keeps the directions of largest variance (a linear map); t-SNE keeps each "
             "point's neighbours (a non-linear map), so the ten digits separate far better. "
             "Two t-SNE runs never give the same coordinates; trustworthiness (how many of "
             "each point's 5 nearest neighbours stay near) and the final KL compare them.")
    plots.write_table_report(out, "PCA and t-SNE on the digits", intro, ["measure", "value"],
                             [[k, v] for k, v in results.items()],
                             ["pca.png", "tsne.png", "tsne-sklearn.png"])
    return results


TOPIC = Topic("pca", "PCA (SVD) and t-SNE maps of the digits vs scikit-learn", run)
