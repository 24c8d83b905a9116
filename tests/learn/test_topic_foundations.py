"""Every topic of issue 16's CNN and foundations runs at tiny scale, writes its report and
plots, and returns numbers that make sense next to the reference library's."""

from __future__ import annotations

import math
import re

import pytest

from lmstack.learn import all_topics, find_topic

CHECKS = {
    "regression": lambda r: (r["least squares normal equations max|Δcoef|"] < 1e-8
                             and r["logistic accuracy"] >= r["sklearn logistic accuracy"] - 0.05),
    "trees": lambda r: (abs(r["tree depth 3 accuracy"] - r["tree depth 3 sklearn accuracy"]) < 0.1
                        and r["tree full depth accuracy"] > 0.5),
    "clustering": lambda r: (r["kmeans max|Δcentre| (same start)"] < 1e-6
                             and r["dbscan labels equal sklearn"] and r["dbscan clusters"] == 2),
    "pca": lambda r: (r["pca max relative variance gap"] < 1e-9
                      and r["tsne trustworthiness (5-NN)"] > 0.9),
    "mlp": lambda r: (r["perceptron max|Δweight|"] < 1e-9 and r["mlp relu accuracy"] > 0.6),
    "optimizers": lambda r: all(v < 1e-6 for k, v in r.items() if "vs torch" in k),
    "cnn": lambda r: all(0.0 <= r[f"{d}_{a}"] <= 1.0 for d in ("digits8", "mnist5k")
                         for a in ("lenet", "resnet")) and r["digits8_sklearn_mlp"] > 0.5
                   and r["digits8_test_images"] == 72 and r["mnist5k_test_images"] == 200,
}


def test_topics_are_listed():
    assert set(CHECKS) <= {t.name for t in all_topics()}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_topic_runs_tiny_and_reports(name, tmp_path):
    results = find_topic(name).run(tmp_path, True)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# ") and "|" in report  # a title and a table
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert images and all((tmp_path / img).is_file() for img in images)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in results.values())
    assert CHECKS[name](results), results


def test_unknown_topic_is_one_clear_error():
    with pytest.raises(ValueError, match="no topic 'nope'"):
        find_topic("nope")
