"""A CART decision tree (Gini impurity, axis-aligned splits) and a random forest of them.

Reference: Breiman et al. 1984 and Breiman 2001, as scikit-learn's DecisionTreeClassifier and
RandomForestClassifier implement them (thresholds halfway between neighbouring values; the
forest averages its trees' class probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Node:
    proba: np.ndarray                # class frequencies of the training rows that reach it
    feature: int = -1                # -1: a leaf
    threshold: float = 0.0
    left: Node | None = None         # rows with x[feature] <= threshold
    right: Node | None = None


def gini(counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Chance that two rows drawn from a node disagree on the class: 0 for a pure node."""
    return 1 - ((counts / n) ** 2).sum(axis=1)


def best_split(X: np.ndarray, y: np.ndarray, k: int, features: np.ndarray):
    """The (feature, threshold) that lowers the size-weighted Gini impurity most, or None.

    Sorting one feature lets a cumulative count give the class counts left of every cut at
    once, so each feature costs one sort instead of one pass per threshold.
    """
    n = len(y)
    best, best_score = None, np.inf
    for f in features:
        order = np.argsort(X[:, f], kind="stable")
        xs, onehot = X[order, f], np.eye(k)[y[order]]
        left = np.cumsum(onehot, axis=0)[:-1]           # counts in the first i+1 rows
        right = onehot.sum(axis=0) - left
        n_left = np.arange(1, n)[:, None]
        score = (n_left[:, 0] * gini(left, n_left)
                 + (n - n_left[:, 0]) * gini(right, n - n_left)) / n
        score[xs[1:] == xs[:-1]] = np.inf                # no cut between equal values
        i = int(np.argmin(score))
        if score[i] < best_score - 1e-12:
            best_score, best = score[i], (int(f), (xs[i] + xs[i + 1]) / 2)
    return best


class DecisionTree:
    def __init__(self, max_depth: int | None = None, min_samples_split: int = 2,
                 max_features: int | None = None, seed: int = 0):
        self.max_depth, self.min_samples_split = max_depth, min_samples_split
        self.max_features, self.rng = max_features, np.random.default_rng(seed)

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None) -> DecisionTree:
        self.k = n_classes or int(y.max()) + 1
        self.root = self._grow(X, y, 0)
        return self

    def _grow(self, X: np.ndarray, y: np.ndarray, depth: int) -> Node:
        node = Node(np.bincount(y, minlength=self.k) / len(y))
        if (len(np.unique(y)) == 1 or len(y) < self.min_samples_split
                or (self.max_depth is not None and depth >= self.max_depth)):
            return node
        d = X.shape[1]
        # A forest's trees each see a random subset of features at every split: that is what
        # makes them disagree, and averaging disagreeing trees is what lowers the variance.
        features = (self.rng.choice(d, self.max_features, replace=False)
                    if self.max_features else np.arange(d))
        split = best_split(X, y, self.k, features)
        if split is None:
            return node
        node.feature, node.threshold = split
        go_left = X[:, node.feature] <= node.threshold
        node.left = self._grow(X[go_left], y[go_left], depth + 1)
        node.right = self._grow(X[~go_left], y[~go_left], depth + 1)
        return node

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), self.k))
        for i, x in enumerate(X):
            node = self.root
            while node.feature >= 0:
                node = node.left if x[node.feature] <= node.threshold else node.right
            out[i] = node.proba
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


class RandomForest:
    """Trees on bootstrap samples, sqrt(features) candidates per split, probabilities averaged."""

    def __init__(self, n_trees: int = 50, max_depth: int | None = None, seed: int = 0):
        self.n_trees, self.max_depth, self.seed = n_trees, max_depth, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> RandomForest:
        rng = np.random.default_rng(self.seed)
        k, m = int(y.max()) + 1, max(1, int(np.sqrt(X.shape[1])))
        self.trees = []
        for t in range(self.n_trees):
            rows = rng.integers(0, len(X), len(X))  # bootstrap: draw n rows with replacement
            tree = DecisionTree(self.max_depth, max_features=m, seed=self.seed * 1000 + t)
            self.trees.append(tree.fit(X[rows], y[rows], n_classes=k))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.mean([t.predict_proba(X) for t in self.trees], axis=0).argmax(axis=1)
