"""CART tree and random forest against scikit-learn: predictions and test accuracy."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from lmstack.foundations import tree as T


def split(loader):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_shallow_tree_predicts_as_sklearn():
    # Depth 3 on the digits has no ties between candidate splits: the same tree, to the leaf.
    Xtr, Xte, ytr, _ = split(load_digits)
    ours = T.DecisionTree(max_depth=3).fit(Xtr, ytr)
    ref = DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xtr, ytr)
    assert ours.root.feature == ref.tree_.feature[0]
    assert abs(ours.root.threshold - ref.tree_.threshold[0]) < 1e-9
    assert np.array_equal(ours.predict(Xte), ref.predict(Xte))


def test_full_tree_and_forest_accuracy_within_three_points():
    # Grown fully, equal-gain splits are broken differently (sklearn shuffles features), so
    # trees differ in detail; accuracy must agree within 0.03.
    Xtr, Xte, ytr, yte = split(load_breast_cancer)
    ours = (T.DecisionTree().fit(Xtr, ytr).predict(Xte) == yte).mean()
    ref = DecisionTreeClassifier(random_state=0).fit(Xtr, ytr).score(Xte, yte)
    assert abs(ours - ref) <= 0.03
    forest = (T.RandomForest(n_trees=20).fit(Xtr, ytr).predict(Xte) == yte).mean()
    ref = RandomForestClassifier(20, random_state=0).fit(Xtr, ytr).score(Xte, yte)
    assert abs(forest - ref) <= 0.03 and forest > 0.9


def test_a_wrong_impurity_is_caught(monkeypatch):
    # Misclassification rate instead of Gini: a classic mistake that grows a different tree.
    monkeypatch.setattr(T, "gini", lambda counts, n: 1 - (counts / n).max(axis=1))
    Xtr, Xte, ytr, _ = split(load_digits)
    ours = T.DecisionTree(max_depth=3).fit(Xtr, ytr)
    ref = DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xtr, ytr)
    assert not np.array_equal(ours.predict(Xte), ref.predict(Xte))
