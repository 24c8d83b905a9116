"""How good are generated digits? A digit classifier trained on real ones rates them: the share
it confidently reads as the digit that was asked for, and the Frechet distance between its
features of generated and of real held-out digits (FID, with a small LeNet for Inception).

References: Heusel et al. 2017 (FID: the Frechet distance of two Gaussians fitted to features),
Dowson & Landau 1982 (the closed form).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmstack.models.cnn import LeNet, max_pool2d


@torch.no_grad()
def lenet_features(net: LeNet, images: Tensor) -> tuple[Tensor, Tensor]:
    """(penultimate features [B, H], class probabilities [B, classes]) in one pass."""
    net.eval()
    x = images
    for conv in net.convs:
        x = max_pool2d(F.relu(conv(x)))
    x = x.flatten(1)
    for fc in net.fcs[:-1]:
        x = F.relu(fc(x))
    return x, net.fcs[-1](x).softmax(dim=1)


def conditional_accuracy(probs: Tensor, wanted: Tensor, confidence: float = 0.9) -> dict:
    """Share of samples read as the requested class with probability >= `confidence`, the
    plain (argmax) share, and how many classes the confident reads cover (mode collapse drops
    classes)."""
    conf, pred = probs.max(dim=1)
    hit = pred == wanted
    sure = hit & (conf >= confidence)
    return {"accuracy_at_confidence": sure.float().mean().item(),
            "accuracy": hit.float().mean().item(),
            "classes_present": int(pred[sure].unique().numel())}


def sqrtm_psd(m: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix, by eigh (tiny
    negative eigenvalues from rounding clipped to 0)."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) for features a [N, H], b [M, H].

    (S_a S_b) is not symmetric, but its square root's trace equals that of the symmetric
    S_a^(1/2) S_b S_a^(1/2) (similar matrices): two symmetric eigen-decompositions, no complex
    round-off as with a general sqrtm."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = sqrtm_psd(s_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross)
