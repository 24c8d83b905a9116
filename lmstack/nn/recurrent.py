"""Recurrent networks: the Elman RNN, LSTM and GRU cells written gate by gate, and a
multi-layer, optionally bidirectional wrapper with torch.nn.RNN / LSTM / GRU's weight names.

References: Elman 1990; Hochreiter & Schmidhuber 1997 (LSTM, with Gers et al. 2000's forget
gate); Cho et al. 2014 (GRU, in the variant cuDNN and PyTorch implement).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Every cell gets the input's share of its pre-activations already computed (x W_ihᵀ + b_ih
# for all time steps at once, one big matmul) and adds the recurrent share step by step.


def rnn_cell(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh). [B, H] in, [B, H] out."""
    return torch.tanh(gx + h @ w_hh.T + b_hh)


def lstm_cell(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor
              ) -> tuple[Tensor, Tensor]:
    """The four gates, stacked in PyTorch's order input, forget, cell candidate, output."""
    i, f, g, o = (gx + h @ w_hh.T + b_hh).chunk(4, dim=-1)
    i = torch.sigmoid(i)  # how much of the candidate to write
    f = torch.sigmoid(f)  # how much of the old cell to keep: the additive path gradients ride
    g = torch.tanh(g)     # the candidate values
    o = torch.sigmoid(o)  # how much of the cell to show as output
    c = f * c + i * g
    return o * torch.tanh(c), c


def gru_cell(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """Reset r, update z, candidate n (PyTorch's order); h' = (1 - z) n + z h."""
    xr, xz, xn = gx.chunk(3, dim=-1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)  # the reset gate scales only the recurrent part (as cuDNN)
    return (1 - z) * n + z * h


GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class Recurrent(nn.Module):
    """Stacked RNN / LSTM / GRU over [B, T, input] (batch first), like torch.nn.RNN & co.

    Parameters are named as torch's (weight_ih_l0, bias_hh_l1_reverse, ...), so a state dict
    moves between the two unchanged. Returns (outputs [B, T, dirs*H], final state), the state
    being h [layers*dirs, B, H], or (h, c) for the LSTM.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"unknown recurrent cell {mode!r}; use one of {', '.join(GATES)}")
        self.mode, self.hidden_size, self.num_layers = mode, hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        g = GATES[mode] * hidden_size
        for layer in range(num_layers):
            d_in = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(g, d_in)))
                self.register_parameter(f"weight_hh{suffix}",
                                        nn.Parameter(torch.empty(g, hidden_size)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(g)))
                self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(g)))
        bound = 1 / math.sqrt(hidden_size)  # torch's init: U(-1/sqrt(H), 1/sqrt(H)) for all
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]

    def _run(self, x: Tensor, suffix: str, h: Tensor, c: Tensor | None, reverse: bool
             ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One direction of one layer: [B, T, d_in] -> [B, T, H], final h (and c)."""
        w_hh, b_hh = getattr(self, f"weight_hh{suffix}"), getattr(self, f"bias_hh{suffix}")
        gx = x @ getattr(self, f"weight_ih{suffix}").T + getattr(self, f"bias_ih{suffix}")
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        out: list[Tensor] = [None] * x.shape[1]  # type: ignore[list-item]
        for t in steps:
            if self.mode == "lstm":
                h, c = lstm_cell(gx[:, t], h, c, w_hh, b_hh)
            elif self.mode == "gru":
                h = gru_cell(gx[:, t], h, w_hh, b_hh)
            else:
                h = rnn_cell(gx[:, t], h, w_hh, b_hh)
            out[t] = h
        return torch.stack(out, dim=1), h, c

    def forward(self, x: Tensor, state: Tensor | tuple[Tensor, Tensor] | None = None):
        B = x.shape[0]
        n = self.num_layers * self.directions
        if state is None:
            zeros = x.new_zeros(n, B, self.hidden_size)
            state = (zeros, zeros) if self.mode == "lstm" else zeros
        h0, c0 = state if self.mode == "lstm" else (state, None)
        hs, cs = [], []
        for layer in range(self.num_layers):
            if layer:
                x = self.dropout(x)  # between layers only, as torch's `dropout`
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                i = layer * self.directions + d
                y, h, c = self._run(x, suffix, h0[i], None if c0 is None else c0[i], d == 1)
                outs.append(y)
                hs.append(h)
                cs.append(c)
            x = torch.cat(outs, dim=-1)  # [B, T, dirs * H]: both directions, side by side
        h_n = torch.stack(hs)
        return x, ((h_n, torch.stack(cs)) if self.mode == "lstm" else h_n)
