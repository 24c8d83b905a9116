"""Prompt and prefix tuning under a step context (SFT's packed rows, as `lmstack finetune`
trains them): every packed example sees the soft prompt or prefix before it, with the logits
and the adapter's gradients of each example run alone through the plain forward (the soft
prompt concatenated, as PEFT does); positions not shifted past the prompt (a deliberate break)
are caught."""

from __future__ import annotations

import pytest
import torch

from lmstack import load
from lmstack.adapt import prefix as prefix_module
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned
from lmstack.nn.step_context import packed_step

TOL = {"atol": 1e-4, "rtol": 1e-4}
P = 3


def adapted(folder, method):
    torch.manual_seed(4)
    model = {"prompt": lambda m: PromptTuned(m, P),
             "prefix": lambda m: PrefixTuned(m, P, projection=True)}[method](load(folder)[0])
    with torch.no_grad():  # off the init, so a wrong layout shows
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    return model.eval()


def packed_and_alone(model):
    """(logits, adapter gradients) of two examples packed in one row, then each alone."""
    first, second = torch.arange(5, 10), torch.arange(20, 27)
    segments = torch.tensor([[1] * len(first) + [2] * len(second)])
    results = []
    for run in (lambda: model(torch.cat([first, second])[None], context=packed_step(segments)),
                lambda: torch.cat([model(first[None]), model(second[None])], dim=1)):
        model.zero_grad()
        logits = run()  # [1, 12, vocab]
        (logits ** 2).mean().backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()
                                          if p.requires_grad]))
    return results


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_packed_examples_each_see_the_adapter_as_alone(folder, method):
    (packed, packed_grads), (alone, alone_grads) = packed_and_alone(adapted(folder, method))
    torch.testing.assert_close(packed, alone, **TOL)
    for got, want in zip(packed_grads, alone_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_unshifted_positions_are_caught(folder, monkeypatch):
    original = prefix_module.PrefixStep.__init__

    def unshifted(self, inner, prefix):
        original(self, inner, prefix)
        self.positions = inner.positions  # the real tokens would restart at 0

    model = adapted(folder, "prompt")
    monkeypatch.setattr(prefix_module.PrefixStep, "__init__", unshifted)
    (packed, _), (alone, _) = packed_and_alone(model)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(packed, alone, **TOL)
