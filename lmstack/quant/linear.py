"""QuantLinear: an nn.Linear whose weight lives as integer codes and scales (lmstack.quant.schemes).

Its state_dict holds `qweight` (codes), `scales`, `mins` (int4 only) and `bias`, so a quantized
model saves and loads as safetensors like any other (lmstack.quant.folder). The product runs
through lmstack.quant.kernels, which picks the fastest path this machine has.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.quant.kernels import quant_matmul
from lmstack.quant.schemes import QuantWeight


class QuantLinear(nn.Module):
    """y = x W^T + b with W decoded from codes on the fly; `scheme` names how it was made
    ("int8", "int4-g64-sym", "q4_1", ...) for saving and reports."""

    def __init__(self, weight: QuantWeight, bias: Tensor | None, scheme: str):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.kind, self.scheme = weight.kind, scheme
        self.register_buffer("qweight", weight.q)
        self.register_buffer("scales", weight.scale)
        self.register_buffer("mins", weight.minimum)  # None (not saved) for int8
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @property
    def quant_weight(self) -> QuantWeight:
        return QuantWeight(self.kind, self.qweight, self.scales, self.mins,
                           (self.out_features, self.in_features))

    @property
    def nbytes(self) -> int:
        return self.quant_weight.nbytes + (0 if self.bias is None else self.bias.numel() * 4)

    def forward(self, x: Tensor) -> Tensor:
        y = quant_matmul(x, self.quant_weight)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def dequantized(self) -> nn.Linear:
        """The float32 nn.Linear these codes stand for (for reference and export)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.quant_weight.dequantize())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"scheme={self.scheme}"
