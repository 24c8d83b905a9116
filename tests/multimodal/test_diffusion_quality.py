"""Rating generated digits: the Frechet distance against scipy's general matrix square root
(the usual FID code's route) and its closed form for shifted means, the confident-accuracy
share by hand, and LeNet's penultimate features feeding its own head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmstack.models.cnn import CNNConfig, build_cnn
from lmstack.multimodal.pictures import grid, png_bytes
from lmstack.multimodal.quality import (
    conditional_accuracy,
    frechet_distance,
    lenet_features,
    sqrtm_psd,
)


def features(seed: int, n: int = 400, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


def test_frechet_distance_matches_scipys_sqrtm_route():
    linalg = pytest.importorskip("scipy.linalg")
    a, b = features(0), features(1)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b).real
    reference = (np.square(a.mean(0) - b.mean(0)).sum() + np.trace(s_a) + np.trace(s_b)
                 - 2 * np.trace(covmean))
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)
    assert np.allclose(sqrtm_psd(s_a) @ sqrtm_psd(s_a), s_a, atol=1e-8)


def test_frechet_distance_of_a_shift_is_its_squared_length():
    a = features(2)
    shift = np.arange(12) / 10
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # The deliberate break: moving every feature by `shift` costs exactly ||shift||^2.
    assert frechet_distance(a, a + shift) == pytest.approx(np.square(shift).sum(), rel=1e-6)


def test_conditional_accuracy_by_hand():
    probs = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98], [0.97, 0.03]])
    wanted = torch.tensor([0, 0, 1, 1])
    got = conditional_accuracy(probs, wanted)
    # Row 0: right and sure; row 1: right, unsure; row 2: right and sure; row 3: wrong.
    assert got == {"accuracy_at_confidence": 0.5, "accuracy": 0.75, "classes_present": 2}


def test_lenet_features_feed_its_head():
    torch.manual_seed(0)
    net = build_cnn(CNNConfig("lenet", 8, widths=[6, 16], kernel=3)).eval()
    x = torch.rand(5, 1, 8, 8)
    feats, probs = lenet_features(net, x)
    assert feats.shape == (5, 84)
    assert torch.allclose(probs, net(x).softmax(1), atol=1e-6)


def test_grid_and_png():
    images = torch.rand(6, 3, 4, 4)
    pixels = grid(images, rows=2, scale=2)
    assert pixels.shape == (2 * 9 + 1, 3 * 9 + 1, 3) and pixels.dtype == np.uint8
    assert png_bytes(pixels)[:8] == b"\x89PNG\r\n\x1a\n"
