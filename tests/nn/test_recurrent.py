"""RNN / LSTM / GRU parity with torch.nn given the same weights: outputs, final states and
gradients, stacked and bidirectional; a swapped pair of gates must break it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmstack.nn import recurrent
from lmstack.nn.recurrent import Recurrent

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _pair(mode, layers, bidirectional):
    torch.manual_seed(0)
    ref = TORCH[mode](5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    ours = Recurrent(mode, 5, 7, num_layers=layers, bidirectional=bidirectional)
    ours.load_state_dict(ref.state_dict())  # same names, same shapes
    return ref.double(), ours.double()


def _states(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("mode", list(TORCH))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_matches_torch(mode, layers, bidirectional):
    ref, ours = _pair(mode, layers, bidirectional)
    x = torch.randn(3, 6, 5, dtype=torch.float64)
    n = layers * (2 if bidirectional else 1)
    h0 = torch.randn(n, 3, 7, dtype=torch.float64)
    state = (h0, torch.randn_like(h0)) if mode == "lstm" else h0
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, s_ref = ref(x_ref, state)
    y_ours, s_ours = ours(x_ours, state)
    assert (y_ref - y_ours).abs().max() < 1e-5
    for a, b in zip(_states(s_ref), _states(s_ours), strict=True):
        assert (a - b).abs().max() < 1e-5
    # Gradients: the same loss through both, compared for the input and every weight.
    w = torch.randn_like(y_ref)
    ((y_ref * w).sum() + sum(s.sum() for s in _states(s_ref))).backward()
    ((y_ours * w).sum() + sum(s.sum() for s in _states(s_ours))).backward()
    assert (x_ref.grad - x_ours.grad).abs().max() < 1e-5
    grads = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert (p.grad - grads[name].grad).abs().max() < 1e-5, name


def test_swapped_lstm_gates_are_caught(monkeypatch):
    """Reading the forget gate where the input gate is (a classic slip) must fail parity."""
    ref, ours = _pair("lstm", 1, False)

    def swapped(gx, h, c, w_hh, b_hh):
        f, i, g, o = (gx + h @ w_hh.T + b_hh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    monkeypatch.setattr(recurrent, "lstm_cell", swapped)
    x = torch.randn(2, 5, 5, dtype=torch.float64)
    assert (ref(x)[0] - ours(x)[0]).abs().max() > 1e-3


def test_unknown_cell_is_one_clear_error():
    with pytest.raises(ValueError, match="use one of rnn, lstm, gru"):
        Recurrent("lstn", 3, 4)
