"""Calibration of choice probabilities: bins and expected calibration error by hand."""

from __future__ import annotations

import pytest

from lmstack.evals.report import calibration


def test_calibration_by_hand():
    records = [  # confidence = the largest choice probability
        {"probs": [0.95, 0.05], "acc": 1.0},  # bin 0.9-1.0
        {"probs": [0.92, 0.08], "acc": 0.0},  # bin 0.9-1.0
        {"probs": [0.3, 0.7], "acc": 1.0},    # bin 0.7-0.8
        {"probs": [0.55, 0.45], "acc": 0.0},  # bin 0.5-0.6
    ]
    cal = calibration(records)
    high = cal["bins"][9]
    assert high["n"] == 2 and high["conf"] == pytest.approx(0.935) and high["acc"] == 0.5
    assert cal["bins"][7]["n"] == 1 and cal["bins"][5]["n"] == 1
    # ECE = 2/4 * |0.5 - 0.935| + 1/4 * |1 - 0.7| + 1/4 * |0 - 0.55|
    assert cal["ece"] == pytest.approx(0.5 * 0.435 + 0.25 * 0.3 + 0.25 * 0.55)
    assert calibration([{"probs": [1.0], "acc": 1.0}])["bins"][9]["n"] == 1  # 1.0 -> last bin
