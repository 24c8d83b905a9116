"""The weight average agrees with torch's own EMA (AveragedModel + get_ema_multi_avg_fn) step
for step, warms up from the first weights, and copies back into a model."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lmstack.train.ema import EMA


def trained_steps(model: nn.Module, steps: int, on_step) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(8, 4, generator=g)
        model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        on_step(model)


def test_fixed_decay_matches_torch_averaged_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    ours = EMA(model, decay=0.9, warmup=False)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    theirs.update_parameters(model)  # torch's first update copies the weights, as EMA() does

    def both(m):
        ours.update(m)
        theirs.update_parameters(m)

    trained_steps(model, 20, both)
    for name, p in theirs.module.named_parameters():
        assert torch.allclose(ours.shadow[name], p, atol=1e-6), name
    # The average lags the trained weights: it is not a copy of them.
    assert not torch.allclose(ours.shadow["0.weight"], model[0].weight)


def test_warmup_forgets_the_initial_weights_fast():
    ema = EMA(nn.Linear(2, 2), decay=0.999)
    assert ema.current_decay() == 0.1   # (1 + 0) / (10 + 0): the first step mostly replaces
    ema.updates = 10**6
    assert ema.current_decay() == 0.999


def test_copy_to_puts_the_average_in_the_model():
    torch.manual_seed(0)
    model = nn.Linear(4, 4)
    ema = EMA(model, decay=0.5, warmup=False)
    trained_steps(model, 3, ema.update)
    other = nn.Linear(4, 4)
    ema.copy_to(other)
    assert torch.equal(other.weight, ema.shadow["weight"])
