"""The run's metrics log (one JSON object per line) and the loss-curve plot drawn from it.

Follows the JSONL logging of nanoGPT/litgpt-style trainers: append-only, greppable, and
trimmed back to the checkpoint's step on resume so a resumed run's log has no duplicate steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lmstack.fileio import atomic_write_text


class MetricsLog:
    def __init__(self, path: str | Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records past `step`: the steps a killed run logged but did not checkpoint."""
        if not self.enabled or not self.path.is_file():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill: ignore it
            continue
    return out


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path, title: str = "") -> Path:
    """Training loss (raw and smoothed) and validation loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="train (per step)")
        ax.plot(steps, smooth(losses), color="tab:blue", lw=2, label="train (smoothed)")
    if val:
        steps, losses = zip(*val, strict=True)
        ax.plot(steps, losses, "o-", color="tab:orange", lw=2, ms=6, label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    plt.close(fig)
    return png_path


def smooth(values, span: int | None = None) -> list[float]:
    """Bias-corrected exponential moving average (as Adam corrects its moments, and as
    TensorBoard's smoothing does), so the line starts on the data instead of climbing to it.

    The span scales with the series (about a fifteenth of it): a fixed long span on a short,
    steeply falling curve lags far behind and draws the line above every raw point.
    """
    values = list(values)
    span = span or max(2, len(values) // 15)
    alpha = 2 / (span + 1)
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        if not math.isfinite(v):  # a diverged step: show the gap, keep the average clean
            out.append(float("nan"))
            continue
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out
