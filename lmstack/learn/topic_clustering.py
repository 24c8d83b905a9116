"""`lmstack learn clustering`: k-means (k-means++ start) and DBSCAN from lmstack.foundations,
next to scikit-learn's, on blobs, two moons and the digits.

Reference: scikit-learn's KMeans (algorithm="lloyd") and DBSCAN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.datasets import load_digits, make_blobs, make_moons
    from sklearn.metrics import adjusted_rand_score

    from lmstack.foundations import clustering as C
    from lmstack.learn import plots

    n = 300 if tiny else 1500
    Xb, _ = make_blobs(n, centers=5, cluster_std=1.5, random_state=0)
    init = C.kmeans_plus_plus(Xb, 5, seed=0)
    centres, kb, inertia = C.kmeans(Xb, 5, init=init)
    ref = KMeans(5, init=init, n_init=1, algorithm="lloyd", tol=0).fit(Xb)
    Xm, _ = make_moons(n, noise=0.06, random_state=0)
    db = C.dbscan(Xm, eps=0.15, min_samples=5)
    db_ref = DBSCAN(eps=0.15, min_samples=5).fit(Xm).labels_
    km_moons = C.kmeans(Xm, 2, seed=0)[1]

    Xd, yd = load_digits(return_X_y=True)
    Xd, yd = (Xd[:400], yd[:400]) if tiny else (Xd, yd)
    kd = C.kmeans(Xd, 10, seed=0)[1]
    kd_ref = KMeans(10, n_init=1, random_state=0).fit(Xd).labels_
    results = {
        "kmeans max|Δcentre| (same start)": float(np.abs(centres - ref.cluster_centers_).max()),
        "kmeans inertia": round(inertia, 3), "sklearn kmeans inertia": round(ref.inertia_, 3),
        "dbscan labels equal sklearn": bool(np.array_equal(db, db_ref)),
        "dbscan clusters": int(db.max() + 1), "dbscan noise points": int((db == -1).sum()),
        "digits kmeans ARI vs true digits": round(adjusted_rand_score(yd, kd), 4),
        "digits sklearn kmeans ARI": round(adjusted_rand_score(yd, kd_ref), 4),
    }
    panels = [(Xb, kb, "lmstack k-means, 5 blobs"), (Xm, km_moons, "k-means on moons: wrong"),
              (Xm, db, "lmstack DBSCAN on moons"), (Xm, db_ref, "sklearn DBSCAN")]

    def draw(i, ax):
        X, lab, title = panels[i]
        ax.scatter(X[:, 0], X[:, 1], c=np.where(lab < 0, -1, lab % 10), cmap="tab10", s=5,
                   vmin=-1, vmax=9)
        ax.set_title(title, fontsize=9)

    plots.figure_grid(4, out / "clusters.png", draw)
    intro = ("k-means from the same k-means++ start as scikit-learn ends on the same centres; "
             "DBSCAN gives the same labels. k-means assumes round clusters and splits the two "
             "moons wrongly; DBSCAN follows density and finds them (grey-blue: noise).")
    plots.write_table_report(out, "Clustering: k-means and DBSCAN", intro, ["measure", "value"],
                             [[k, v] for k, v in results.items()], ["clusters.png"])
    return results


TOPIC = Topic("clustering", "k-means and DBSCAN vs scikit-learn (blobs, moons, digits)", run)
