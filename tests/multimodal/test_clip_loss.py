"""CLIP's symmetric InfoNCE equals a hand computation and transformers' clip_loss; same-group
pairs are masked; the learned temperature receives a gradient."""

from __future__ import annotations

import math

import pytest
import torch

from lmstack.multimodal.clip_loss import clip_loss


def by_hand(logits: list[list[float]], groups: list[int] | None = None) -> float:
    """-log softmax of the diagonal, over rows and over columns, in plain Python."""
    n = len(logits)
    groups = groups or list(range(n))

    def direction(score) -> float:
        total = 0.0
        for i in range(n):
            allowed = [score(i, j) for j in range(n) if j == i or groups[j] != groups[i]]
            total += -score(i, i) + math.log(sum(math.exp(s) for s in allowed))
        return total / n

    return (direction(lambda i, j: logits[i][j]) + direction(lambda i, j: logits[j][i])) / 2


def test_equals_hand_computation_with_and_without_groups():
    torch.manual_seed(0)
    logits = torch.randn(5, 5) * 3
    assert abs(clip_loss(logits).item() - by_hand(logits.tolist())) < 1e-5
    groups = [0, 1, 0, 2, 1]
    got = clip_loss(logits, torch.tensor(groups)).item()
    assert abs(got - by_hand(logits.tolist(), groups)) < 1e-5
    assert abs(got - by_hand(logits.tolist())) > 1e-3      # the mask changes the loss


def test_equals_transformers_clip_loss():
    modeling = pytest.importorskip("transformers.models.clip.modeling_clip")
    # transformers 5 names it image_text_contrastive_loss; 4 called it clip_loss.
    reference = getattr(modeling, "image_text_contrastive_loss", None) or modeling.clip_loss
    logits = torch.randn(7, 7) * 5
    assert torch.allclose(clip_loss(logits), reference(logits), atol=1e-6)
    assert not torch.allclose(clip_loss(logits.flip(0)), reference(logits), atol=1e-3)


def test_temperature_is_learned():
    scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    cos = torch.eye(4) * 0.5 + 0.1                        # positives already closest
    clip_loss(scale.exp() * cos).backward()
    assert scale.grad is not None and scale.grad < 0       # sharpening lowers the loss
