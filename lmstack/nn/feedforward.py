"""Position-wise feed-forward blocks: the GELU MLP (GPT-2, BERT) and SwiGLU (Llama).

References: Hendrycks & Gimpel 2016 (GELU), Shazeer 2020 "GLU Variants Improve Transformer".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.nn.fusion import FusedLinear

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # exact erf form (BERT)
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's tanh approximation
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str):
    """Look up an activation by the name HF configs use (hidden_act / activation_function)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; supported: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class GeluMLP(nn.Module):
    """Linear up to `intermediate`, GELU, linear back down (names as in GPT-2: c_fc, c_proj)."""

    def __init__(self, hidden: int, intermediate: int, act: str = "gelu_new", bias: bool = True):
        super().__init__()
        self.c_fc = nn.Linear(hidden, intermediate, bias=bias)
        self.c_proj = nn.Linear(intermediate, hidden, bias=bias)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): a gated MLP; names as in Llama checkpoints."""

    def __init__(self, hidden: int, intermediate: int, act: str = "silu", bias: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.up_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)
        self.act = activation(act)
        self.gate_up: FusedLinear | None = None  # set by fuse_projections, for inference

    def fuse_projections(self, column_major: bool = False) -> None:
        """Compute gate and up as one matrix product (see lmstack.nn.fusion)."""
        self.gate_up = FusedLinear([self.gate_proj, self.up_proj], column_major)

    def forward(self, x: Tensor) -> Tensor:
        if self.gate_up is not None and self.gate_up.usable(self.gate_proj, self.up_proj):
            gate, up = self.gate_up(x).chunk(2, dim=-1)  # [..., intermediate] each
            return self.down_proj(self.act(gate) * up)
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
