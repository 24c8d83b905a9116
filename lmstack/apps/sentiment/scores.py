"""Accuracy and macro-F1 of predicted labels, the two numbers every model here reports.

Macro-F1 averages each class's F1 (the harmonic mean of its precision and recall) with equal
weight, as scikit-learn's `f1_score(average="macro")`; it drops when a model favours one class.
"""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    if len(gold) != len(predicted) or not gold:
        raise ValueError("accuracy needs two equally long, non-empty label lists")
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def macro_f1(gold: Sequence[int], predicted: Sequence[int]) -> float:
    classes = sorted(set(gold) | set(predicted))
    f1s = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, predicted, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def report(gold: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted),
            "n": len(gold)}
