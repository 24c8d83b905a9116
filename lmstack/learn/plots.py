"""Small matplotlib helpers the learning topics share: a confusion matrix, a grid of images,
a 2-D scatter coloured by class, and curves; each writes one PNG and returns its path.

Reference: the figures of scikit-learn's examples (ConfusionMatrixDisplay, its digits plots).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, k: int) -> np.ndarray:
    """Row = true class, column = predicted class."""
    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (labels, predictions), 1)
    return m


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_title(title)
    return _save(fig, path)


def plot_images(images: np.ndarray, path: Path, title: str, cols: int = 8) -> Path:
    """Each image scaled to its own range, so filters of any magnitude are visible."""
    plt = _plt()
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4), dpi=100)
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, img in zip(np.ravel(axes), images, strict=False):
        ax.imshow(img, cmap="gray")
    fig.suptitle(title)
    return _save(fig, path)


def plot_scatter(points: np.ndarray, labels: np.ndarray, path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    s = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6)
    fig.colorbar(s, ax=ax)
    ax.set_title(title)
    return _save(fig, path)


def plot_curves(curves: dict[str, list[float]], path: Path, title: str, ylabel: str,
                log: bool = False) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, ys in curves.items():
        ax.plot(ys, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_boundary(predict, X: np.ndarray, y: np.ndarray, ax, title: str) -> None:
    """Colour the plane by `predict` on a grid, then draw the points on top."""
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    z = predict(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    ax.contourf(gx, gy, z, alpha=0.3, cmap="tab10", vmin=0, vmax=9)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="tab10", vmin=0, vmax=9, s=8, edgecolors="k",
               linewidths=0.2)
    ax.set_title(title, fontsize=9)


def figure_grid(n: int, path: Path, draw) -> Path:
    """n panels side by side; `draw(i, ax)` fills panel i."""
    plt = _plt()
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), dpi=100)
    for i, ax in enumerate(np.ravel(axes)):
        draw(i, ax)
    return _save(fig, path)


def write_report(out: Path, title: str, lines: list[str]) -> Path:
    from lmstack.fileio import atomic_write_text

    path = out / "report.md"
    atomic_write_text(path, f"# {title}\n\n" + "\n".join(lines) + "\n")
    return path


def write_table_report(out: Path, title: str, intro: str, header: list[str], rows: list[list],
                       images: list[str]) -> Path:
    """The common report: a paragraph, one table, then the plots (file names under `out`)."""
    pictures = " ".join(f"![{Path(name).stem}]({name})" for name in images)
    return write_report(out, title, [intro, "", *table(header, rows), "", pictures])


def table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table; floats with 4 decimals."""
    def fmt(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows])
