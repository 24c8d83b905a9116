"""`lmstack learn trees`: a CART decision tree and a random forest from lmstack.foundations,
next to scikit-learn's, on the digits and as decision boundaries on two moons.

Reference: scikit-learn's DecisionTreeClassifier and RandomForestClassifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    from sklearn.datasets import load_digits, make_moons
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    from lmstack.foundations.tree import DecisionTree, RandomForest
    from lmstack.learn import plots

    X, y = load_digits(return_X_y=True)
    if tiny:
        X, y = X[:400], y[:400]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    n_trees = 5 if tiny else 40
    pairs = {
        "tree depth 3": (DecisionTree(3), DecisionTreeClassifier(max_depth=3, random_state=0)),
        "tree full depth": (DecisionTree(), DecisionTreeClassifier(random_state=0)),
        f"forest of {n_trees}": (RandomForest(n_trees),
                                 RandomForestClassifier(n_trees, random_state=0)),
    }
    rows, results = [], {}
    for name, (ours, ref) in pairs.items():
        a = float((ours.fit(Xtr, ytr).predict(Xte) == yte).mean())
        b = float(ref.fit(Xtr, ytr).score(Xte, yte))
        rows.append([name, a, b])
        results[f"{name} accuracy"] = round(a, 4)
        results[f"{name} sklearn accuracy"] = round(b, 4)

    Xm, ym = make_moons(300, noise=0.25, random_state=0)
    models = [("lmstack tree (depth 5)", DecisionTree(5).fit(Xm, ym)),
              ("sklearn tree (depth 5)", DecisionTreeClassifier(max_depth=5, random_state=0)
               .fit(Xm, ym)),
              (f"lmstack forest ({n_trees})", RandomForest(n_trees, max_depth=5).fit(Xm, ym)),
              (f"sklearn forest ({n_trees})", RandomForestClassifier(
                  n_trees, max_depth=5, random_state=0).fit(Xm, ym))]
    plots.figure_grid(4, out / "boundaries.png", lambda i, ax: plots.plot_boundary(
        models[i][1].predict, Xm, ym, ax, models[i][0]))
    lines = [(f"Digits ({len(Xtr)} train / {len(Xte)} test images, 64 pixel features): test "
             "accuracy."), "", *plots.table(["model", "lmstack", "scikit-learn"], rows), "",
             ("Decision boundaries on two noisy moons: a tree cuts the plane into boxes; a "
             "forest's vote smooths them."), "", "![boundaries](boundaries.png)"]
    plots.write_report(out, "Decision trees and random forests", lines)
    return results


TOPIC = Topic("trees", "decision tree and random forest vs scikit-learn (digits, boundaries)",
              run)
