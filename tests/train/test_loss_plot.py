"""The loss plot's smoothed line follows the raw loss (no line floating above every point on a
falling curve), and validation is drawn as a series of points."""

from __future__ import annotations

import json
import math
import random

from lmstack.train.metrics import plot_loss_curve, smooth


def falling_losses(n: int = 40, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [8.0 - 3.0 * i / n + rng.uniform(-0.15, 0.15) for i in range(n)]


def test_smoothed_line_stays_within_the_raw_points():
    raw = falling_losses()
    line = smooth(raw)
    assert line[0] == raw[0]  # bias-corrected: starts on the data
    # A trailing smoother lags a falling curve a little; a long fixed span lagged ~0.5 nats.
    lag = sum(s - r for s, r in zip(line, raw, strict=True)) / len(raw)
    assert lag < 0.15, lag
    trend_end = 8.0 - 3.0 * (len(raw) - 1) / len(raw)
    assert abs(line[-1] - trend_end) < 0.2, (line[-1], trend_end)


def test_a_diverged_step_leaves_a_gap_not_a_poisoned_average():
    line = smooth([5.0, float("nan"), 4.0, 4.0])
    assert math.isnan(line[1]) and math.isfinite(line[-1]) and 4.0 <= line[-1] < 5.0


def test_plot_draws_validation_as_marked_points(tmp_path):
    log = tmp_path / "metrics.jsonl"
    records = [{"step": i, "loss": v} for i, v in enumerate(falling_losses())]
    records += [{"step": s, "val_loss": v} for s, v in ((10, 7.0), (20, 6.5), (39, 5.8))]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    png = plot_loss_curve(log, tmp_path / "loss.png")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
